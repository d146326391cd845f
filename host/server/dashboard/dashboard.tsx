/** @jsxRuntime automatic @jsxImportSource hono/jsx */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { getRequestListener } from '@hono/node-server'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { csrf } from 'hono/csrf'
import { secureHeaders } from 'hono/secure-headers'
import { streamSSE } from 'hono/streaming'
import type { AppStore } from '../../apps/app-store.ts'
import type { HostLogger } from '../../log/host-logger.ts'
import type { RecentInvocations } from '../../logs/recent-invocations.ts'
import type { Pool } from '../../pool/pool.ts'
import type { ProfileTracker } from '../../pool/profile-tracker.ts'
import type { RecentColdStarts } from '../../pool/recent-cold-starts.ts'
import { keyLevel } from '../../router/index.ts'
import type { EdgeStats } from './edge-stats.ts'
import { UiSessions, sameToken, type UiSession } from './ui-sessions.ts'
import {
  DashboardPage,
  LoginPage,
  SECTIONS,
  type DashboardData,
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
  /** How often the live view looks for changes. Default 1 s. */
  tickMs?: number
}

const COOKIE = 'thaw_ui'
const BASE = '/admin/ui'

/**
 * The host's dashboard at `/admin/ui`: server-rendered HTML (hono's JSX) that htmx keeps live
 * over server-sent events, each section an event carrying its new HTML, sent when it changed.
 *
 * Login: the master key in a POSTed form, never a URL; the answer is an opaque session token in
 * an HttpOnly, SameSite=Strict cookie scoped to /admin/ui (Secure behind https). Every POST must
 * come from the dashboard's own origin (hono's csrf: Origin / Sec-Fetch-Site), and logout also
 * carries the session's CSRF token. The CSP allows only the dashboard's own scripts and styles
 * (htmx and its SSE extension from their npm packages; nothing from a CDN).
 */
export function createDashboard(ctx: DashboardContext): {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
} {
  const sessions = new UiSessions()
  const app = new Hono().basePath(BASE)
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

  app.get('/', async (c) => {
    const s = session(c)
    if (!s) return c.html(<LoginPage refused={false} />)
    return c.html(<DashboardPage d={await gather()} csrf={s.csrf} />)
  })

  app.post('/login', async (c) => {
    const form = await c.req.parseBody()
    const key = typeof form.key === 'string' ? form.key : ''
    if (keyLevel(key, undefined, { master: ctx.masterKey }).level !== 'admin') {
      ctx.logger.log('warn', 'dashboard login refused (not the master key)', {
        address: address(c),
      })
      return c.html(<LoginPage refused={true} />, 401)
    }
    const { token } = sessions.create()
    setCookie(c, COOKIE, token, {
      path: BASE,
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: Math.floor(sessions.ttlMs / 1000),
    })
    return c.redirect(BASE, 303)
  })

  app.post('/logout', async (c) => {
    const s = session(c)
    const form = await c.req.parseBody()
    if (s && !sameToken(typeof form.csrf === 'string' ? form.csrf : undefined, s.csrf)) {
      return c.text('the form is stale: reload the dashboard', 403)
    }
    sessions.delete(getCookie(c, COOKIE))
    deleteCookie(c, COOKIE, { path: BASE })
    return c.redirect(BASE, 303)
  })

  app.get('/events', (c) => {
    if (!session(c)) return c.text('log in first', 401)
    return streamSSE(c, async (stream) => {
      const sent = new Map<SectionName, string>()
      while (!stream.aborted && !stream.closed && session(c)) {
        const d = await gather()
        for (const name of Object.keys(SECTIONS) as SectionName[]) {
          const Body = SECTIONS[name]
          const html = (<Body d={d} />).toString()
          if (sent.get(name) === html) continue
          sent.set(name, html)
          await stream.writeSSE({ event: name, data: html })
        }
        await stream.sleep(ctx.tickMs ?? 1000)
      }
    })
  })

  function session(c: Context): UiSession | undefined {
    return sessions.get(getCookie(c, COOKIE))
  }

  async function gather(): Promise<DashboardData> {
    const profiles = ctx.profiles.states()
    // The edges' figures, at most every few seconds, and never longer than a moment here.
    await Promise.race([ctx.edges.refresh(profiles), new Promise((r) => setTimeout(r, 200))])
    return {
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
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

function address(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress
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
