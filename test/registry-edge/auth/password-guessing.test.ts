import { beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../registry-edge/auth/password-hash.ts'
import { errorCode, startTestEdge } from '../../support/edge-client.ts'
import { fetchFrom } from '../../support/fetch-from.ts'

let url: string
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

beforeAll(async () => {
  const password = await hashPassword('right')
  ;({ url } = await startTestEdge({
    auth: {
      users: { alice: { password }, bob: { password }, carol: { password } },
      access: [{ repository: 'apps/**', users: ['*'], actions: ['pull'] }],
      loginLimits: { freeFailures: 3, backoffSeconds: 60 },
    },
  }))
})

/** The value of a counter on /metrics (0 when it has no sample yet). */
async function counter(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`))
  return line ? Number(line.split(' ').pop()) : 0
}

const ping = (f: typeof fetch, authorization: string) => f(`${url}/v2/`, { headers: { authorization } })

describe('password guessing', () => {
  it('answers 429 with Retry-After once an address has used its free failures, and lets others in', async () => {
    const guesser = fetchFrom('127.0.0.2')
    const statuses: number[] = []
    for (let i = 0; i < 8; i++) statuses.push((await ping(guesser, basic(`user${i % 2 ? 'x' : 'y'}`, `guess${i}`))).status)
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429])
    const refused = await ping(guesser, basic('alice', 'right')) // even the right password
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(50)
    expect(await errorCode(refused)).toBe('TOOMANYREQUESTS')
    // /token is a login too.
    expect((await guesser(`${url}/token?scope=repository:apps/x:pull`, { headers: { authorization: basic('alice', 'x') } })).status).toBe(429)
    // Another address is not held up.
    expect((await ping(fetchFrom('127.0.0.3'), basic('alice', 'right'))).status).toBe(200)
  })

  it('backs off guesses at one user from many addresses, but not that user at an address they signed in from', async () => {
    const home = fetchFrom('127.0.0.10')
    expect((await ping(home, basic('bob', 'right'))).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await ping(fetchFrom(`127.0.1.${i}`), basic('bob', 'wrong'))).status).toBe(401)
    expect((await ping(fetchFrom('127.0.1.9'), basic('bob', 'wrong'))).status).toBe(429)
    expect((await ping(fetchFrom('127.0.1.10'), basic('bob', 'right'))).status).toBe(429) // a new address for bob waits
    expect((await ping(home, basic('bob', 'right'))).status).toBe(200)
  })

  it('checks an unknown user with one scrypt, as it does a known one', async () => {
    const client = fetchFrom('127.0.0.20')
    const before = await counter('thaw_edge_password_checks_total')
    expect((await ping(client, basic('carol', 'wrong'))).status).toBe(401)
    expect(await counter('thaw_edge_password_checks_total')).toBe(before + 1)
    expect((await ping(client, basic('nobody-by-this-name', 'wrong'))).status).toBe(401)
    expect(await counter('thaw_edge_password_checks_total')).toBe(before + 2)
    // A refused login costs none.
    expect(await counter('thaw_edge_logins_refused_total', 'by="address"')).toBeGreaterThan(0)
  })
})
