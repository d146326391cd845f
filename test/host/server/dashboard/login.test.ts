import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jsonHostLogger } from '../../../../host/log/host-logger.ts'
import { clientKey, LoginThrottle } from '../../../../host/server/dashboard/login-throttle.ts'
import { loginRoutes, UI_BASE } from '../../../../host/server/dashboard/login.tsx'
import { UiSessions } from '../../../../host/server/dashboard/ui-sessions.ts'

/**
 * The dashboard's login over real HTTP (its hono routes on a node server on port 0), from several
 * loopback addresses (127.0.0.x: every one reaches 127.0.0.1 on Linux) so that the per-address
 * and the global limits can be told apart. Small limits (3 wrong keys per address, 5 for the
 * host, a minute each) so that a few requests reach them.
 */
const KEY = 'the-master-key-0123456789abcdef'

describe('dashboard login throttle', () => {
  let server: Server
  let url: string
  const log: string[] = []

  beforeAll(async () => {
    const app = new Hono().basePath(UI_BASE)
    app.route(
      '/',
      loginRoutes({
        masterKey: KEY,
        sessions: new UiSessions(),
        throttle: new LoginThrottle({
          perAddress: { failures: 3, seconds: 60 },
          global: { failures: 5, seconds: 60 },
        }),
        logger: jsonHostLogger((line) => void log.push(line)),
      }),
    )
    server = createServer(getRequestListener(app.fetch))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${UI_BASE}/login`
  })

  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  /** POSTs a login form from `from` (a local address). */
  function login(from: string, key: string) {
    const body = new URLSearchParams({ key }).toString()
    return new Promise<{ status: number; retryAfter?: string; cookie?: string[]; body: string }>(
      (resolve, reject) => {
        const req = httpRequest(
          url,
          {
            method: 'POST',
            localAddress: from,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          },
          (res) => {
            let text = ''
            res.setEncoding('utf8')
            res.on('data', (chunk: string) => (text += chunk))
            res.on('end', () =>
              resolve({
                status: res.statusCode!,
                retryAfter: res.headers['retry-after'],
                cookie: res.headers['set-cookie'],
                body: text,
              }),
            )
          },
        )
        req.on('error', reject)
        req.end(body)
      },
    )
  }

  it('refuses an address with 429 and Retry-After after its wrong keys, the right key too', async () => {
    for (let i = 0; i < 3; i++) expect((await login('127.0.0.2', 'wrong')).status).toBe(401)
    const throttled = await login('127.0.0.2', 'wrong')
    expect(throttled.status).toBe(429)
    expect(Number(throttled.retryAfter)).toBeGreaterThan(0)
    expect(Number(throttled.retryAfter)).toBeLessThanOrEqual(60)
    expect(throttled.body).toMatch(/Too many wrong keys lately: try again in \d+ s/)
    // Its key is not even looked at: the right one waits as well.
    const right = await login('127.0.0.2', KEY)
    expect(right.status).toBe(429)
    expect(right.cookie).toBeUndefined()
  })

  it('lets another address log in meanwhile, and a right key clears its own count', async () => {
    const ok = await login('127.0.0.3', KEY)
    expect(ok.status).toBe(303)
    expect(String(ok.cookie)).toMatch(/^thaw_ui=/)
    expect((await login('127.0.0.3', 'wrong')).status).toBe(401)
    expect((await login('127.0.0.3', 'wrong')).status).toBe(401)
    expect((await login('127.0.0.3', KEY)).status).toBe(303)
    // Its two wrong keys were forgiven: three more before it waits.
    for (let i = 0; i < 3; i++) expect((await login('127.0.0.3', 'wrong')).status).toBe(401)
    expect((await login('127.0.0.3', 'wrong')).status).toBe(429)
  })

  it('holds new addresses once the host had too many wrong keys, not one that logged in before', async () => {
    expect((await login('127.0.0.7', KEY)).status).toBe(303)
    // The host's wrong keys so far: .2's three (those of .3, which had logged in, do not count).
    expect((await login('127.0.0.4', 'wrong')).status).toBe(401)
    expect((await login('127.0.0.5', 'wrong')).status).toBe(401)
    const fresh = await login('127.0.0.6', KEY)
    expect(fresh.status).toBe(429)
    expect(Number(fresh.retryAfter)).toBeGreaterThan(0)
    expect(Number(fresh.retryAfter)).toBeLessThanOrEqual(60)
    // .7 logged in before: the host's limit does not hold it.
    expect((await login('127.0.0.7', KEY)).status).toBe(303)
  })

  it('logs the throttling once per address and limit, and never the key', () => {
    const lines = log.join('')
    expect(lines).not.toContain(KEY)
    const throttled = log.filter((l) => l.includes('dashboard logins throttled'))
    expect(throttled.map((l) => JSON.parse(l).address)).toEqual([
      '127.0.0.2',
      '127.0.0.3',
      '127.0.0.6',
    ])
  })
})

describe('clientKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:0:12::1', '2001:db8:0:12::/64'],
    ['2001:0db8:0000:0012:aaaa:bbbb:cccc:dddd', '2001:db8:0:12::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('counts %s as %s', (address, key) => {
    expect(clientKey(address)).toBe(key)
  })
})
