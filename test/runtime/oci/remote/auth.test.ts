import type { ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Of } from '../../../../runtime/oci/digest.ts'
import { MediaType } from '../../../../runtime/oci/media-types.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../../runtime/oci/remote/registry-client.ts'
import { sendError, sendJson, startTestServer, type SeenRequest } from './test-server.ts'

const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociEmpty, digest: sha256Of('{}'), size: 2 },
    layers: [],
  }),
)

function sendManifest(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': MANIFEST.length })
  res.end(MANIFEST)
}

/** The scope a request to the fake registry needs: push for writes, pull otherwise. */
function needed(req: SeenRequest): string {
  const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(req.url)?.[1] ?? ''
  return `repository:${name}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}`
}

function grants(granted: string[], want: string): boolean {
  const [type, name, actions] = [
    want.slice(0, want.indexOf(':')),
    want.slice(want.indexOf(':') + 1, want.lastIndexOf(':')),
    want.slice(want.lastIndexOf(':') + 1),
  ]
  return granted.some((g) => {
    const gActions = g.slice(g.lastIndexOf(':') + 1).split(',')
    return g.startsWith(`${type}:${name}:`) && actions.split(',').every((a) => gActions.includes(a))
  })
}

/** A token server and a registry that demands its tokens, like distribution with token auth. */
async function startTokenRegistry(options: { expiresIn?: number; requireUser?: string } = {}) {
  const issued = new Map<string, string[]>()
  const fetches: { scopes: string[]; authorization?: string }[] = []
  const auth = await startTestServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    const scopes = url.searchParams.getAll('scope')
    fetches.push({ scopes, authorization: req.headers.authorization })
    if (options.requireUser) {
      const basic = `Basic ${Buffer.from(options.requireUser).toString('base64')}`
      if (req.headers.authorization !== basic)
        return sendJson(res, 401, { details: 'bad credentials' })
    }
    const token = `tok-${fetches.length}`
    issued.set(token, scopes)
    sendJson(res, 200, {
      token,
      expires_in: options.expiresIn ?? 300,
      issued_at: new Date().toISOString(),
    })
  })
  const registry = await startTestServer((req, res) => {
    const want = needed(req)
    const token = req.headers.authorization?.replace(/^Bearer /, '')
    if (!token || !issued.has(token) || !grants(issued.get(token)!, want)) {
      return sendError(res, 401, 'UNAUTHORIZED', {
        'www-authenticate': `Bearer realm="${auth.url}/token",service="test-registry",scope="${want}"`,
      })
    }
    if (req.method === 'PUT') {
      res.writeHead(201, { 'docker-content-digest': sha256Of(req.body) })
      return res.end()
    }
    sendManifest(res)
  })
  return { auth, registry, fetches, issued }
}

let client: RegistryClient | undefined
afterEach(async () => {
  await client?.close()
  client = undefined
})

describe('Bearer token auth', () => {
  it('fetches one token for a scope and reuses it for later requests', async () => {
    const { registry, fetches } = await startTokenRegistry()
    client = createRegistryClient({ registry: registry.url })
    for (let i = 0; i < 3; i++) await client.getManifest('apps/hello', 'v1')
    expect(fetches).toEqual([{ scopes: ['repository:apps/hello:pull'], authorization: undefined }])
    // One 401 to learn the challenge, then every request carried the token.
    expect(registry.requests.map((r) => r.headers.authorization ?? 'none')).toEqual([
      'none',
      'Bearer tok-1',
      'Bearer tok-1',
      'Bearer tok-1',
    ])
  })

  it('fetches a wider token for a push after a pull', async () => {
    const { registry, fetches } = await startTokenRegistry()
    client = createRegistryClient({ registry: registry.url })
    await client.getManifest('apps/hello', 'v1')
    await client.putManifest('apps/hello', 'v2', MANIFEST, MediaType.ociManifest)
    await client.getManifest('apps/hello', 'v1')
    // The push asked for a pull,push token up front (the challenge was known); the pull token
    // still served the last pull.
    expect(fetches.map((f) => f.scopes)).toEqual([
      ['repository:apps/hello:pull'],
      ['repository:apps/hello:pull,push'],
    ])
    expect(
      registry.requests.map((r) => `${r.method} ${r.headers.authorization ?? 'none'}`),
    ).toEqual(['GET none', 'GET Bearer tok-1', 'PUT Bearer tok-2', 'GET Bearer tok-1'])
  })

  it('fetches a separate token for another repository', async () => {
    const { registry, fetches } = await startTokenRegistry()
    client = createRegistryClient({ registry: registry.url })
    await client.getManifest('apps/a', 'v1')
    await client.getManifest('apps/b', 'v1')
    await client.getManifest('apps/a', 'v1')
    expect(fetches.map((f) => f.scopes)).toEqual([
      ['repository:apps/a:pull'],
      ['repository:apps/b:pull'],
    ])
  })

  it('fetches a new token once the cached one is about to expire', async () => {
    const { registry, fetches } = await startTokenRegistry({ expiresIn: 120 })
    let now = 1_000_000
    client = createRegistryClient({ registry: registry.url, now: () => now })
    await client.getManifest('apps/hello', 'v1')
    now += 100_000 // 100 s of 120: still good
    await client.getManifest('apps/hello', 'v1')
    expect(fetches).toHaveLength(1)
    now += 15_000 // 115 s: inside the 10 s safety margin
    await client.getManifest('apps/hello', 'v1')
    expect(fetches).toHaveLength(2)
    expect(registry.requests.at(-1)!.headers.authorization).toBe('Bearer tok-2')
  })

  it('shares one token fetch between concurrent requests for the same scope', async () => {
    const { registry, fetches } = await startTokenRegistry()
    client = createRegistryClient({ registry: registry.url })
    await client.getManifest('x/y', 'v1') // learns the challenge, so the next ones ask up front
    await Promise.all(Array.from({ length: 8 }, () => client!.getManifest('x/z', 'v1')))
    expect(fetches.map((f) => f.scopes)).toEqual([['repository:x/y:pull'], ['repository:x/z:pull']])
  })

  it('sends Basic credentials to the token endpoint, looked up by registry host', async () => {
    const { registry, fetches } = await startTokenRegistry({ requireUser: 'alice:s3cret' })
    const hosts: string[] = []
    client = createRegistryClient({
      registry: registry.url,
      credentials: (host) => {
        hosts.push(host)
        return { username: 'alice', password: 's3cret' }
      },
    })
    await client.getManifest('apps/hello', 'v1')
    expect(fetches[0]!.authorization).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    )
    expect(hosts[0]).toBe(new URL(registry.url).host)
  })

  it('fails with UNAUTHORIZED when the token endpoint refuses the credentials', async () => {
    const { registry } = await startTokenRegistry({ requireUser: 'alice:s3cret' })
    client = createRegistryClient({
      registry: registry.url,
      credentials: { username: 'alice', password: 'wrong' },
    })
    await expect(client.getManifest('apps/hello', 'v1')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    })
  })

  it('refetches a token the registry stops accepting, once, then fails with UNAUTHORIZED', async () => {
    const { registry, fetches, issued } = await startTokenRegistry()
    client = createRegistryClient({ registry: registry.url })
    await client.getManifest('apps/hello', 'v1')
    issued.clear() // the registry forgets every token: it now refuses tok-1
    await client.getManifest('apps/hello', 'v1') // 401, a new token, success
    expect(fetches).toHaveLength(2)
    registry.setHandler((_req, res) =>
      sendError(res, 401, 'UNAUTHORIZED', {
        'www-authenticate': `Bearer realm="${registry.url}/nope",service="s"`,
      }),
    )
    await expect(client.getManifest('apps/hello', 'v1')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    })
  })
})

describe('Basic auth', () => {
  const expected = `Basic ${Buffer.from('bob:pw').toString('base64')}`

  async function startBasicRegistry() {
    return startTestServer((req, res) => {
      if (req.headers.authorization !== expected) {
        return sendError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="test"' })
      }
      sendManifest(res)
    })
  }

  it('answers a Basic challenge with the credentials, then sends them up front', async () => {
    const registry = await startBasicRegistry()
    client = createRegistryClient({
      registry: registry.url,
      credentials: { username: 'bob', password: 'pw' },
    })
    await client.getManifest('a', 'v1')
    await client.getManifest('a', 'v2')
    expect(registry.requests.map((r) => r.headers.authorization ?? 'none')).toEqual([
      'none',
      expected,
      expected,
    ])
  })

  it.each([
    ['without credentials', undefined],
    ['with wrong credentials', { username: 'bob', password: 'nope' }],
  ])('fails with UNAUTHORIZED %s', async (_name, credentials) => {
    const registry = await startBasicRegistry()
    client = createRegistryClient({ registry: registry.url, credentials })
    await expect(client.getManifest('a', 'v1')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    })
  })
})
