import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { AppStore } from '../apps/app-store.ts'
import { answer } from '../local/http-answers.ts'
import { acceptBody } from '../request-body/index.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { Pool } from '../pool/pool.ts'
import type { ProfileTracker } from '../pool/profile-tracker.ts'
import { RecentColdStarts } from '../pool/recent-cold-starts.ts'
import { handleAdmin, type AdminContext } from './admin-api.ts'
import { createDashboard } from './dashboard/dashboard.tsx'
import { EdgeStats } from './dashboard/edge-stats.ts'
import { appAddress } from './app-address.ts'
import { serveFunction } from './function-door.ts'
import { createRollout } from './rollout.ts'
import type { HostMetrics } from './host-metrics.ts'
import { createHostServer, DEFAULT_SERVER_LIMITS, type ServerLimits } from './http-server.ts'
import { mayReadMetrics, METRICS_CHALLENGE } from './metrics-access.ts'

export interface HostOptions {
  apps: AppStore
  pool: Pool
  mounts: ImageMounts
  profiles: ProfileTracker
  metrics: HostMetrics
  masterKey: string
  /** Opens `/metrics` (as does the master key) and nothing else. */
  metricsKey?: string
  /** Deadlines and connection caps of the HTTP server (http-server.ts; DEFAULT_SERVER_LIMITS). */
  server?: Partial<ServerLimits>
  /** Apps answer at `<app>.<domain>`. Default `localhost`. */
  domain?: string
  /** The dashboard's view of the edges (edge-stats.ts); default: `http://<registry>` of each image. */
  edges?: EdgeStats
  logger: HostLogger
  /** The apps' logs and recent invocations (shared with the pool). */
  logs: AppLogs
}

export interface Host {
  /** The node:http request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void
  listen(port: number, hostname?: string): Promise<{ url: string; server: Server }>
  /** Stops listening, drains apps, destroys nodes. Idempotent. */
  close(): Promise<void>
}

/**
 * The host's HTTP entry: `/healthz` (open), `/metrics` (metrics or master key,
 * metrics-access.ts), `/admin/ui` (the dashboard, dashboard/; a login with the master key),
 * `/admin/...` (admin-api.ts, master key), and every other
 * request for an app by host name or path (app-address.ts) through the function door. Changing
 * or deleting an app drains its nodes; requests already in flight finish.
 */
export function createHost(o: HostOptions): Host {
  const domain = o.domain ?? 'localhost'
  const rollout = createRollout({ apps: o.apps, pool: o.pool, logger: o.logger })
  const admin: AdminContext = { ...o, rollout, startedAt: new Date() }
  const coldStarts = new RecentColdStarts()
  const door = { ...o, coldStarts }
  const edges = o.edges ?? new EdgeStats()
  const invocations = o.logs.invocations
  const dashboard = createDashboard({ ...admin, coldStarts, edges, invocations, logger: o.logger })
  // A new revision switches the app's nodes at once (to those its rollout started, if any).
  o.apps.onChange((name, app) => void (app ? o.pool.nodesOf(app) : o.pool.forget(name)))
  let server: Server | undefined
  let closing: Promise<void> | undefined

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const raw = req.url ?? '/'
    const url = new URL(raw, 'http://host')
    const address = appAddress(req.headers.host, raw, domain)
    if (address?.by !== 'host') {
      if (url.pathname === '/healthz') return answer(res, 200, 'ok')
      if (url.pathname === '/metrics') return metrics(req, res)
      if (/^\/admin\/ui(\/|$)/.test(url.pathname)) {
        acceptBody(req, res)
        return dashboard.handle(req, res)
      }
      if (/^\/admin(\/|$)/.test(url.pathname)) {
        acceptBody(req, res)
        return handleAdmin(admin, req, res, url)
      }
    }
    if (!address) {
      const port = `:${req.socket.localPort}`
      const hint = `use http://<app>.${domain}${port}/... or http://${req.headers.host ?? `127.0.0.1${port}`}/<app>/...`
      return answer(res, 404, `no app here: ${hint}`)
    }
    // Azure's `POST /admin/functions/<name>` on the app's own host name: the admin API's invoke.
    const invoke =
      address.by === 'host' ? /^\/admin\/functions\/([^/]+)\/?$/.exec(url.pathname) : null
    if (invoke) {
      acceptBody(req, res)
      const path = `/admin/apps/${encodeURIComponent(address.app)}/functions/${invoke[1]}`
      return handleAdmin(admin, req, res, new URL(`${path}${url.search}`, url))
    }
    const app = o.apps.get(address.app)
    if (!app) return answer(res, 404, `no app named "${address.app}"`)
    // Where the app answers, as the client addressed it (the pipeline's 404 hints show it).
    const origin =
      address.by === 'host'
        ? `http://${req.headers.host}`
        : `http://${req.headers.host ?? 'host'}/${address.app}`
    return serveFunction(door, app, o.pool.nodesOf(app), address.path, req, res, origin)
  }

  async function metrics(req: IncomingMessage, res: ServerResponse) {
    if (!mayReadMetrics(req, { master: o.masterKey, metrics: o.metricsKey })) {
      res.setHeader('www-authenticate', METRICS_CHALLENGE)
      return answer(res, 401, 'metrics need the metrics or master key (Authorization: Bearer)')
    }
    o.metrics.warmNodes.set(o.pool.warmPool.size)
    const text = await o.metrics.registry.metrics()
    res.writeHead(200, { 'content-type': o.metrics.registry.contentType })
    res.end(text)
  }

  return {
    handle(req, res) {
      handle(req, res).catch((err: unknown) => {
        o.logger.log('error', `request failed: ${(err as Error).message}`, { url: req.url })
        if (!res.headersSent) answer(res, 500)
        else res.destroy()
      })
    },
    async listen(port, hostname = '127.0.0.1') {
      const limits = { ...DEFAULT_SERVER_LIMITS, ...o.server }
      server = createHostServer(
        limits,
        (req, res) => this.handle(req, res),
        (reason) => o.metrics.connectionsRefused.inc({ reason }),
      )
      // `Expect: 100-continue` is answered by the function door after its body limit (a 413
      // instead, before any byte of the body is sent).
      server.on('checkContinue', (req, res) => this.handle(req, res))
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject)
        server!.listen(port, hostname, () => resolve())
      })
      const { port: real } = server.address() as AddressInfo
      return { url: `http://${hostname === '0.0.0.0' ? '127.0.0.1' : hostname}:${real}`, server }
    },
    close() {
      closing ??= (async () => {
        const closed = server ? new Promise((r) => server!.close(r)) : undefined
        server?.closeIdleConnections()
        await o.pool.close()
        server?.closeAllConnections()
        await closed
        await o.profiles.settled()
        await edges.close()
      })()
      return closing
    },
  }
}
