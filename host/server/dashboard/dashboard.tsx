/** @jsxRuntime automatic @jsxImportSource hono/jsx */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { getRequestListener } from '@hono/node-server'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { csrf } from 'hono/csrf'
import { secureHeaders } from 'hono/secure-headers'
import { streamSSE } from 'hono/streaming'
import { LRUCache } from 'lru-cache'
import type { AppStore } from '../../apps/app-store.ts'
import type { HostLogger } from '../../log/host-logger.ts'
import type { RecentInvocations } from '../../logs/recent-invocations.ts'
import type { Pool } from '../../pool/pool.ts'
import type { ProfileTracker } from '../../pool/profile-tracker.ts'
import type { RecentColdStarts } from '../../pool/recent-cold-starts.ts'
import type { EdgeStats } from './edge-stats.ts'
import { loginRoutes, sessionOf, UI_BASE } from './login.tsx'
import { LoginThrottle, type LoginLimits } from './login-throttle.ts'
import { sectionUpdate } from './section-view.ts'
import { UiSessions, type UiSession } from './ui-sessions.ts'
import {
  DashboardPage,
  LoginPage,
  pageView,
  type DashboardData,
  type PageView,
  type SectionName,
} from './views.tsx'

export interface DashboardContext {
  apps: AppStore
  pool: Pool
  profiles: ProfileTracker
  coldStarts: RecentColdStarts
  invocations: RecentInvocations
  edges: EdgeStats
  masterKey: string
  startedAt: Date
  logger: HostLogger
  /** How often the live view looks for changes it is not told of (nodes, edges). Default 1 s. */
  tickMs?: number
  /** Of wrong keys at the login (login-throttle.ts DEFAULT_LOGIN_LIMITS). */
  loginLimits?: LoginLimits
}

/** The live view sends at most this often, however many invocations end. */
const MIN_GAP_MS = 200

/**
 * The host's dashboard at `/admin/ui`: server-rendered HTML (hono's JSX) that htmx keeps live
 * over server-sent events. The page is rendered whole; then each change is sent as the least
 * that turns the page into the new one (section-view.ts: a new invocation is one row), as one
 * `update` event of htmx out-of-band swaps, at once when an invocation, a cold start or an app
 * changes (at most every MIN_GAP_MS), else within `tickMs`.
 *
 * Login: login.tsx (the key in a POSTed form into a session cookie; throttled). Every POST must
 * come from the dashboard's own origin (hono's csrf: Origin / Sec-Fetch-Site). The CSP allows
 * only the dashboard's own scripts and styles (htmx and its SSE extension from their npm
 * packages; nothing from a CDN).
 */
export function createDashboard(ctx: DashboardContext): {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
} {
  const sessions = new UiSessions()
  const throttle = new LoginThrottle(ctx.loginLimits)
  /** What each page showed when rendered, for the one event stream it opens (by its view id). */
  const pages = new LRUCache<string, { session: UiSession; view: PageView }>({
    max: 64,
    ttl: 60_000,
  })
  const changed = new Set<() => void>()
  const wake = () => changed.forEach((f) => f())
  ctx.invocations.subscribe(wake)
  ctx.coldStarts.subscribe(wake)
  ctx.apps.onChange(wake)

  const app = new Hono().basePath(UI_BASE)
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      referrerPolicy: 'no-referrer',
    }),
  )
  app.use(csrf())
  app.use(bodyLimit({ maxSize: 4096 }))
  app.get('/assets/:name', (c) => asset(c, c.req.param('name')))
  app.route('/', loginRoutes({ masterKey: ctx.masterKey, sessions, throttle, logger: ctx.logger }))

  app.get('/', async (c) => {
    const s = sessionOf(c, sessions)
    if (!s) return c.html(<LoginPage />)
    const view = pageView(await gather())
    const id = randomBytes(12).toString('base64url')
    pages.set(id, { session: s, view })
    const events = `${UI_BASE}/events?view=${id}`
    return c.html(<DashboardPage view={view} csrf={s.csrf} events={events} />)
  })

  app.get('/events', (c) => {
    const s = sessionOf(c, sessions)
    if (!s) return c.text('log in first', 401)
    // What the page shows: as rendered, or (a reconnection, an old page) unknown, sent whole.
    const id = c.req.query('view')
    const page = id === undefined ? undefined : pages.get(id)
    if (id !== undefined) pages.delete(id)
    let shown = page?.session === s ? page.view : undefined
    return streamSSE(c, async (stream) => {
      let pending = false
      let woken: (() => void) | undefined
      const onChange = () => {
        pending = true
        woken?.()
      }
      changed.add(onChange)
      stream.onAbort(() => woken?.())
      try {
        while (!stream.aborted && !stream.closed && sessionOf(c, sessions)) {
          pending = false
          const now = pageView(await gather())
          let html = ''
          for (const name of Object.keys(now) as SectionName[]) {
            html += sectionUpdate(name, shown?.[name], now[name])
          }
          shown = now
          if (html) await stream.writeSSE({ event: 'update', data: html })
          await stream.sleep(MIN_GAP_MS)
          if (pending || stream.aborted) continue
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, Math.max(0, (ctx.tickMs ?? 1000) - MIN_GAP_MS))
            function done() {
              clearTimeout(timer)
              woken = undefined
              resolve()
            }
            woken = done
          })
        }
      } finally {
        changed.delete(onChange)
      }
    })
  })

  async function gather(): Promise<DashboardData> {
    const profiles = ctx.profiles.states()
    // The edges' figures, at most every few seconds, and never longer than a moment here.
    await Promise.race([ctx.edges.refresh(profiles), new Promise((r) => setTimeout(r, 200))])
    return {
      startedAt: ctx.startedAt.toISOString(),
      apps: ctx.apps.list(),
      record: (name) => ctx.apps.record(name),
      pool: ctx.pool.status(),
      coldStarts: ctx.coldStarts.list(),
      invocations: ctx.invocations.list({ limit: 1000 }),
      profiles,
      edges: ctx.edges.edges(),
      edgeImage: (reference, workload) => ctx.edges.image(reference, workload),
    }
  }

  const listener = getRequestListener(app.fetch)
  return { handle: (req, res) => listener(req, res) }
}

const require = createRequire(import.meta.url)
/** The front end: htmx and its SSE extension from their npm packages, the stylesheet here. */
const ASSET_FILES: Record<string, { file: string; type: string }> = {
  'htmx.min.js': { file: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  'sse.js': { file: require.resolve('htmx-ext-sse/dist/sse.js'), type: 'text/javascript' },
  'dashboard.css': { file: new URL('./dashboard.css', import.meta.url).pathname, type: 'text/css' },
}
const assetCache = new Map<string, Buffer>()

function asset(c: Context, name: string): Response {
  const a = ASSET_FILES[name]
  if (!a) return c.text('no such asset', 404)
  let bytes = assetCache.get(name)
  if (!bytes) assetCache.set(name, (bytes = readFileSync(a.file)))
  return c.body(new Uint8Array(bytes), 200, {
    'content-type': `${a.type}; charset=utf-8`,
    'cache-control': 'no-cache',
  })
}
