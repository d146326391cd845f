/** @jsxRuntime automatic @jsxImportSource hono/jsx */
import type { IncomingMessage } from 'node:http'
import { Hono, type Context } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { HostLogger } from '../../log/host-logger.ts'
import { keyLevel } from '../../router/index.ts'
import { LoginThrottle } from './login-throttle.ts'
import { UiSessions, sameToken, type UiSession } from './ui-sessions.ts'
import { LoginPage } from './views.tsx'

export const UI_BASE = '/admin/ui'
const COOKIE = 'thaw_ui'

export interface LoginOptions {
  masterKey: string
  sessions: UiSessions
  throttle: LoginThrottle
  logger: HostLogger
}

/**
 * The dashboard's `POST /login` and `POST /logout`, to mount at UI_BASE. The master key comes in
 * a POSTed form, never a URL, and is never logged; the answer is an opaque session token in an
 * HttpOnly, SameSite=Strict cookie scoped to UI_BASE (Secure behind https). Tries are throttled
 * per client address and for the host (login-throttle.ts): 429 with Retry-After. Logout also
 * carries the session's CSRF token.
 */
export function loginRoutes(o: LoginOptions): Hono {
  const app = new Hono()

  app.post('/login', async (c) => {
    const from = address(c)
    const take = await o.throttle.take(from)
    if (take.refused) {
      if (take.first) {
        const which = take.limit === 'address' ? 'this address' : 'the host'
        o.logger.log('warn', `dashboard logins throttled: too many wrong keys from ${which}`, {
          address: from,
          retryAfterSeconds: take.wait,
        })
      }
      c.header('retry-after', String(take.wait))
      return c.html(
        <LoginPage refused={{ kind: 'throttled', retryAfterSeconds: take.wait }} />,
        429,
      )
    }
    const form = await c.req.parseBody()
    const key = typeof form.key === 'string' ? form.key : ''
    if (keyLevel(key, undefined, { master: o.masterKey }).level !== 'admin') {
      o.logger.log('warn', 'dashboard login refused (not the master key)', { address: from })
      return c.html(<LoginPage refused={{ kind: 'wrong-key' }} />, 401)
    }
    await o.throttle.succeeded(from)
    const { token } = o.sessions.create()
    setCookie(c, COOKIE, token, {
      path: UI_BASE,
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: Math.floor(o.sessions.ttlMs / 1000),
    })
    return c.redirect(UI_BASE, 303)
  })

  app.post('/logout', async (c) => {
    const s = sessionOf(c, o.sessions)
    const form = await c.req.parseBody()
    if (s && !sameToken(typeof form.csrf === 'string' ? form.csrf : undefined, s.csrf)) {
      return c.text('the form is stale: reload the dashboard', 403)
    }
    o.sessions.delete(getCookie(c, COOKIE))
    deleteCookie(c, COOKIE, { path: UI_BASE })
    return c.redirect(UI_BASE, 303)
  })

  return app
}

/** The session of the request's cookie, if it is live. */
export function sessionOf(c: Context, sessions: UiSessions): UiSession | undefined {
  return sessions.get(getCookie(c, COOKIE))
}

/** The client's address (@hono/node-server puts the request in the env). */
function address(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress
}
