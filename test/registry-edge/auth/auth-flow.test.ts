import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { hashPassword } from '../../../registry-edge/auth/password-hash.ts'
import { errorCode, pushBlob, pushManifest, startTestEdge } from '../../support/edge-client.ts'

let url: string
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const ALICE = basic('alice', 'alice-pw')
const BOB = basic('bob', 'bob-pw')
const CAROL = basic('carol', 'carol-pw')
let secretDigest: string
let publicDigest: string

beforeAll(async () => {
  const users = Object.fromEntries(
    await Promise.all(['alice', 'bob', 'carol'].map(async (u) => [u, { password: await hashPassword(`${u}-pw`) }])),
  )
  ;({ url } = await startTestEdge({
    auth: {
      users,
      access: [
        { repository: 'apps/**', users: ['alice'], actions: ['pull', 'push', 'delete'] },
        { repository: 'apps/**', users: ['bob'], actions: ['pull'] },
        { repository: 'carol/*', users: ['carol'], actions: ['pull', 'push'] },
        { repository: 'public/*', anonymous: true, actions: ['pull'] },
        { repository: 'public/*', users: ['alice'], actions: ['push'] },
      ],
    },
  }))
  secretDigest = await pushBlob(url, 'apps/secret', randomBytes(100), 'monolithic', 0, { authorization: ALICE })
  publicDigest = await pushBlob(url, 'public/site', randomBytes(100), 'monolithic', 0, { authorization: ALICE })
})

function challengeOf(res: Response): Record<string, string> {
  const header = res.headers.get('www-authenticate') ?? ''
  expect(header.startsWith('Bearer ')).toBe(true)
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]))
}

/** A token as docker clients get one: for the service the edge's challenge names (its Host here). */
async function token(scope: string, authorization?: string, service = new URL(url).host): Promise<string> {
  const res = await fetch(`${url}/token?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, {
    headers: authorization ? { authorization } : {},
  })
  expect(res.status).toBe(200)
  const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string }
  expect(body.access_token).toBe(body.token)
  expect(body.expires_in).toBeGreaterThanOrEqual(60)
  expect(Date.parse(body.issued_at)).not.toBeNaN()
  return body.token
}

const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { access: unknown[] }

describe('auth on /v2', () => {
  it('challenges an anonymous /v2/ ping with the edge token endpoint', async () => {
    const res = await fetch(`${url}/v2/`)
    expect(res.status).toBe(401)
    expect(await errorCode(res)).toBe('UNAUTHORIZED')
    expect(challengeOf(res)).toEqual({ realm: `${url}/token`, service: new URL(url).host })
    expect((await fetch(`${url}/v2/`, { headers: { authorization: ALICE } })).status).toBe(200)
  })

  it('lets anonymous requests pull where the config allows it, without a token', async () => {
    expect((await fetch(`${url}/v2/public/site/blobs/${publicDigest}`)).status).toBe(200)
  })

  it('denies anonymous pull elsewhere with a challenge naming the scope', async () => {
    const res = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`)
    expect(res.status).toBe(401)
    expect(challengeOf(res).scope).toBe('repository:apps/secret:pull')
  })

  it('asks pushers for pull and push together', async () => {
    const res = await fetch(`${url}/v2/apps/secret/blobs/uploads/`, { method: 'POST' })
    expect(res.status).toBe(401)
    expect(challengeOf(res).scope).toBe('repository:apps/secret:pull,push')
  })

  it('accepts Basic credentials directly and refuses wrong ones with 401', async () => {
    expect((await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: BOB } })).status).toBe(200)
    const wrong = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: basic('bob', 'guess') } })
    expect(wrong.status).toBe(401)
  })

  it('answers a signed-in user without the grant 403 DENIED', async () => {
    const res = await fetch(`${url}/v2/apps/secret/blobs/uploads/`, { method: 'POST', headers: { authorization: BOB } })
    expect(res.status).toBe(403)
    expect(await errorCode(res)).toBe('DENIED')
    const del = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { method: 'DELETE', headers: { authorization: BOB } })
    expect(del.status).toBe(403)
  })
})

describe('tokens', () => {
  it('grants only the part of the requested scope the user has', async () => {
    expect(claims(await token('repository:apps/x:pull,push', ALICE)).access).toEqual([{ type: 'repository', name: 'apps/x', actions: ['pull', 'push'] }])
    expect(claims(await token('repository:apps/x:pull,push', BOB)).access).toEqual([{ type: 'repository', name: 'apps/x', actions: ['pull'] }])
    expect(claims(await token('repository:apps/x:pull')).access).toEqual([]) // anonymous
    expect(claims(await token('repository:public/site:pull')).access).toEqual([{ type: 'repository', name: 'public/site', actions: ['pull'] }])
  })

  it('refuses a token request with a wrong password', async () => {
    const res = await fetch(`${url}/token?service=edge&scope=repository:apps/x:pull`, { headers: { authorization: basic('alice', 'x') } })
    expect(res.status).toBe(401)
  })

  it('lets a token do what its scope says and nothing more', async () => {
    const push = await token('repository:apps/tok:pull,push', ALICE)
    const data = randomBytes(50)
    const digest = await pushBlob(url, 'apps/tok', data, 'chunked', 20, { authorization: `Bearer ${push}` })
    const pull = await token('repository:apps/tok:pull', BOB)
    expect((await fetch(`${url}/v2/apps/tok/blobs/${digest}`, { headers: { authorization: `Bearer ${pull}` } })).status).toBe(200)
    // Bob's token was granted pull only: pushing gets 401 insufficient_scope, so clients re-ask.
    const denied = await fetch(`${url}/v2/apps/tok/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${pull}` } })
    expect(denied.status).toBe(401)
    expect(challengeOf(denied)).toMatchObject({ scope: 'repository:apps/tok:pull,push', error: 'insufficient_scope' })
    // A token for one repository is no good for another, even one the user may pull.
    const other = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: `Bearer ${pull}` } })
    expect(other.status).toBe(401)
  })

  it('rejects a token issued for another service (audience) with invalid_token', async () => {
    // Without `service` configured the edge issues for the service asked, and accepts only its own.
    const elsewhere = await token('repository:apps/secret:pull', BOB, 'other-registry.example')
    const res = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: `Bearer ${elsewhere}` } })
    expect(res.status).toBe(401)
    expect(challengeOf(res).error).toBe('invalid_token')
    const own = await token('repository:apps/secret:pull', BOB)
    expect((await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: `Bearer ${own}` } })).status).toBe(200)
  })

  it('with a service configured, issues tokens for it alone, and edges sharing a key do not take each other\'s', async () => {
    const users = { bob: { password: await hashPassword('bob-pw') } }
    const access = [{ repository: 'apps/**', users: ['bob'], actions: ['pull' as const] }]
    const tokenKey = 'shared-key-'.repeat(4)
    const a = await startTestEdge({ auth: { service: 'edge-a', tokenKey, users, access } })
    const b = await startTestEdge({ auth: { service: 'edge-b', tokenKey, users, access } })
    const ask = (edge: string, service: string) =>
      fetch(`${edge}/token?service=${service}&scope=repository:apps/x:pull`, { headers: { authorization: BOB } })
    const foreign = await ask(a.url, 'edge-b')
    expect(foreign.status).toBe(403)
    expect(await errorCode(foreign)).toBe('DENIED')
    const fromA = ((await (await ask(a.url, 'edge-a')).json()) as { token: string }).token
    const blob = (edge: string) => fetch(`${edge}/v2/apps/x/blobs/${secretDigest}`, { headers: { authorization: `Bearer ${fromA}` } })
    expect((await blob(a.url)).status).toBe(404) // accepted: the blob is just not there
    expect((await blob(b.url)).status).toBe(401)
  })

  it('rejects a forged or garbled token with invalid_token', async () => {
    const t = await token('repository:apps/secret:pull', BOB)
    const forged = `${t.slice(0, -4)}AAAA`
    const res = await fetch(`${url}/v2/apps/secret/blobs/${secretDigest}`, { headers: { authorization: `Bearer ${forged}` } })
    expect(res.status).toBe(401)
    expect(challengeOf(res).error).toBe('invalid_token')
  })
})

describe('auth and other endpoints', () => {
  it('mounts across repositories only from one the caller may pull', async () => {
    const mount = (from: string, digest: string) =>
      fetch(`${url}/v2/carol/box/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: { authorization: CAROL } })
    // carol may push to carol/box but not pull apps/secret: an ordinary upload starts instead.
    const refused = await mount('apps/secret', secretDigest)
    expect(refused.status).toBe(202)
    expect((await fetch(`${url}/v2/carol/box/blobs/${secretDigest}`, { headers: { authorization: CAROL } })).status).toBe(404)
    const allowed = await mount('public/site', publicDigest)
    expect(allowed.status).toBe(201)
  })

  it('lists in the catalog only what the caller may pull', async () => {
    const { url: edge } = await startTestEdge({
      auth: {
        users: { alice: { password: await hashPassword('pw') } },
        access: [
          { repository: '**', users: ['alice'], actions: ['*'] },
          { repository: 'public/*', anonymous: true, actions: ['pull'] },
        ],
      },
    })
    const headers = { authorization: basic('alice', 'pw') }
    for (const repo of ['apps/a', 'public/b']) {
      const c = await pushBlob(edge, repo, Buffer.from('{}'), 'monolithic', 0, headers)
      const l = await pushBlob(edge, repo, randomBytes(10), 'monolithic', 0, headers)
      const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c, size: 2 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l, size: 10 }] }
      expect((await pushManifest(edge, repo, 'v1', manifest, undefined, headers)).status).toBe(201)
    }
    expect(await (await fetch(`${edge}/v2/_catalog`)).json()).toEqual({ repositories: ['public/b'] })
    expect(await (await fetch(`${edge}/v2/_catalog`, { headers })).json()).toEqual({ repositories: ['apps/a', 'public/b'] })
  })

  it('keeps /healthz and /metrics open', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect((await fetch(`${url}/metrics`)).status).toBe(200)
  })
})
