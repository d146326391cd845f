import { afterEach, describe, expect, it } from 'vitest'
import { sha256Of } from '../../../../runtime/oci/digest.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../../runtime/oci/remote/registry-client.ts'
import { sendError, startTestServer } from './test-server.ts'

const BLOB = Buffer.from('0123456789abcdefghij')
const DIGEST = sha256Of(BLOB)
const CREDS = { username: 'u', password: 'p' }
const BASIC = `Basic ${Buffer.from('u:p').toString('base64')}`

let client: RegistryClient | undefined
afterEach(async () => {
  await client?.close()
  client = undefined
})

/** "Storage": serves the blob, honouring a single Range, like a presigned-URL object store. */
async function startStorage() {
  return startTestServer((req, res) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
    if (range) {
      const [start, end] = [Number(range[1]), Number(range[2])]
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end}/${BLOB.length}`,
        'content-length': end - start + 1,
      })
      return res.end(BLOB.subarray(start, end + 1))
    }
    res.writeHead(200, { 'content-length': BLOB.length })
    res.end(BLOB)
  })
}

/** A registry with Basic auth that redirects blob GETs to `target` with `status`. */
async function startRedirectingRegistry(target: () => string, status = 307) {
  return startTestServer((req, res) => {
    if (req.headers.authorization !== BASIC) {
      return sendError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="r"' })
    }
    res.writeHead(status, { location: target() })
    res.end()
  })
}

describe('redirects', () => {
  it.each([301, 302, 303, 307, 308])(
    'follows a %i to another origin without forwarding Authorization, keeping Range',
    async (status) => {
      const storage = await startStorage()
      const registry = await startRedirectingRegistry(
        () => `${storage.url}/bucket/blob?sig=abc`,
        status,
      )
      client = createRegistryClient({ registry: registry.url, credentials: CREDS })
      expect(await client.fetchRange('apps/x', DIGEST, 5, 9)).toEqual(Buffer.from('56789'))
      expect(storage.requests).toHaveLength(1)
      expect(storage.requests[0]!.url).toBe('/bucket/blob?sig=abc')
      expect(storage.requests[0]!.headers.authorization).toBeUndefined()
      expect(storage.requests[0]!.headers.range).toBe('bytes=5-9')
      // The registry itself did get the credentials.
      expect(registry.requests.at(-1)!.headers.authorization).toBe(BASIC)
    },
  )

  it('keeps Authorization on a redirect within the same origin (relative Location)', async () => {
    let hops = 0
    const registry = await startTestServer((req, res) => {
      if (req.headers.authorization !== BASIC) {
        return sendError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="r"' })
      }
      if (hops++ === 0) {
        res.writeHead(307, { location: '/elsewhere/blob' })
        return res.end()
      }
      res.writeHead(200, { 'content-length': BLOB.length })
      res.end(BLOB)
    })
    client = createRegistryClient({ registry: registry.url, credentials: CREDS })
    expect(await client.readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(registry.requests.at(-1)).toMatchObject({
      url: '/elsewhere/blob',
      headers: { authorization: BASIC },
    })
  })

  it('drops Authorization for good once a redirect left the origin, even if it comes back', async () => {
    const registry = await startTestServer((req, res) => {
      if (req.url.startsWith('/v2/')) {
        res.writeHead(302, { location: `${hop.url}/hop` })
        return res.end()
      }
      res.writeHead(200, { 'content-length': BLOB.length })
      res.end(BLOB)
    })
    const hop = await startTestServer((_req, res) => {
      res.writeHead(302, { location: `${registry.url}/back` })
      res.end()
    })
    client = createRegistryClient({ registry: registry.url })
    await client.readBlob('apps/x', DIGEST)
    expect(registry.requests.map((r) => r.url)).toEqual([`/v2/apps/x/blobs/${DIGEST}`, '/back'])
    expect(registry.requests[1]!.headers.authorization).toBeUndefined()
  })

  it('stops a redirect loop with REGISTRY_REDIRECT_LOOP', async () => {
    const registry = await startTestServer((_req, res) => {
      res.writeHead(302, { location: '/again' })
      res.end()
    })
    client = createRegistryClient({ registry: registry.url })
    await expect(client.readBlob('apps/x', DIGEST)).rejects.toMatchObject({
      code: 'REGISTRY_REDIRECT_LOOP',
    })
    expect(registry.requests.length).toBe(11)
  })

  it('does not forward Basic credentials when the token endpoint redirects to another origin', async () => {
    const tokens = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"token":"t"}')
    })
    const realm = await startTestServer((req, res) => {
      res.writeHead(307, { location: `${tokens.url}/issue${req.url}` })
      res.end()
    })
    const registry = await startTestServer((req, res) => {
      if (req.headers.authorization !== 'Bearer t') {
        return sendError(res, 401, 'UNAUTHORIZED', {
          'www-authenticate': `Bearer realm="${realm.url}/token",service="s"`,
        })
      }
      res.writeHead(200, { 'content-length': BLOB.length })
      res.end(BLOB)
    })
    client = createRegistryClient({ registry: registry.url, credentials: CREDS })
    expect(await client.readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(realm.requests[0]!.headers.authorization).toBe(BASIC)
    expect(tokens.requests[0]!.url).toMatch(
      /^\/issue\/token\?service=s&scope=repository%3Aapps%2Fx%3Apull$/,
    )
    expect(tokens.requests[0]!.headers.authorization).toBeUndefined()
  })
})
