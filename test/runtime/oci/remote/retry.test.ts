import { afterEach, describe, expect, it } from 'vitest'
import { sha256Of } from '../../../../runtime/oci/digest.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../../runtime/oci/remote/registry-client.ts'
import { freePort } from '../../../support/processes.ts'
import { sendError, startTestServer } from './test-server.ts'

const BLOB = Buffer.from('retry me')
const DIGEST = sha256Of(BLOB)
const PATH = `/v2/apps/x/blobs/${DIGEST}`

let client: RegistryClient | undefined
afterEach(async () => {
  await client?.close()
  client = undefined
})

function fastClient(url: string, attempts = 4) {
  client = createRegistryClient({
    registry: url,
    retry: { attempts, baseDelayMs: 1, maxDelayMs: 5 },
  })
  return client
}

/** A server whose first answers are `faults` ('reset' drops the connection), then success. */
async function faultyBlobServer(
  faults: (number | 'reset')[],
  headers: Record<string, string> = {},
) {
  let n = 0
  return startTestServer((req, res, raw) => {
    const fault = faults[n++]
    if (fault === 'reset') return raw.socket.destroy()
    if (fault !== undefined)
      return sendError(res, fault, fault === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', headers)
    if (req.method === 'POST') {
      res.writeHead(202, { location: '/v2/apps/x/blobs/uploads/1' })
      return res.end()
    }
    res.writeHead(200, { 'content-length': BLOB.length, 'docker-content-digest': DIGEST })
    res.end(BLOB)
  })
}

describe('retries', () => {
  it('retries a 429 after its Retry-After, then succeeds', async () => {
    const server = await faultyBlobServer([429], { 'retry-after': '0' })
    expect(await fastClient(server.url).readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(server.lines()).toEqual([`GET ${PATH}`, `GET ${PATH}`])
  })

  it('retries 503 twice, then succeeds', async () => {
    const server = await faultyBlobServer([503, 503])
    expect(await fastClient(server.url).readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(server.requests).toHaveLength(3)
  })

  it.each([500, 502, 504])('retries %i on a GET', async (status) => {
    const server = await faultyBlobServer([status])
    expect(await fastClient(server.url).readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(server.requests).toHaveLength(2)
  })

  it('retries a dropped connection, then succeeds', async () => {
    const server = await faultyBlobServer(['reset'])
    expect(await fastClient(server.url).readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(server.requests).toHaveLength(2)
  })

  it('retries a body cut short mid-way, reading the whole blob again', async () => {
    let n = 0
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length })
      if (n++ === 0) {
        res.write(BLOB.subarray(0, 3))
        return void setTimeout(() => res.socket?.destroy(), 10)
      }
      res.end(BLOB)
    })
    expect(await fastClient(server.url).readBlob('apps/x', DIGEST)).toEqual(BLOB)
    expect(server.requests).toHaveLength(2)
  })

  it('gives up after the configured attempts with the last error', async () => {
    const server = await faultyBlobServer([503, 503, 503, 503, 503])
    const err = await fastClient(server.url, 3)
      .readBlob('apps/x', DIGEST)
      .catch((e) => e)
    expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, fault: 'system' })
    expect(server.requests).toHaveLength(3)
  })

  it.each([400, 401, 403, 404, 405])('does not retry a %i', async (status) => {
    const server = await faultyBlobServer([status, status])
    await expect(fastClient(server.url).readBlob('apps/x', DIGEST)).rejects.toMatchObject({
      status,
    })
    expect(server.requests).toHaveLength(1)
  })

  it.each([500, 502, 504, 'reset' as const])(
    'does not repeat a POST after %s: the registry may have acted on it',
    async (fault) => {
      const server = await faultyBlobServer([fault])
      const err = await fastClient(server.url)
        .mountBlob('apps/x', 'apps/y', DIGEST)
        .catch((e) => e)
      expect(err.code).toBe(fault === 'reset' ? 'REGISTRY_UNREACHABLE' : 'UNAVAILABLE')
      expect(server.lines().filter((l) => l.startsWith('POST'))).toHaveLength(1)
    },
  )

  it('repeats a POST after a 429 or 503: the registry did not act on it', async () => {
    const server = await faultyBlobServer([429, 503])
    // 202 with a Location: not mounted, the upload session is cancelled.
    expect(await fastClient(server.url).mountBlob('apps/x', 'apps/y', DIGEST)).toBe(false)
    expect(server.lines().filter((l) => l.startsWith('POST'))).toHaveLength(3)
  })

  it('reports a registry nobody listens on as REGISTRY_UNREACHABLE after retrying', async () => {
    const port = await freePort()
    const err = await fastClient(`http://127.0.0.1:${port}`, 2)
      .headBlob('a', DIGEST)
      .catch((e) => e)
    expect(err).toMatchObject({ code: 'REGISTRY_UNREACHABLE', fault: 'system' })
    expect(err.message).toMatch(/ECONNREFUSED/)
  })
})

describe('abort', () => {
  it('rejects at once with an AbortError when aborted during a backoff sleep', async () => {
    // The server asks for a 60 s pause; only the abort can end the wait before the test times out.
    const server = await faultyBlobServer([503, 503], { 'retry-after': '60' })
    client = createRegistryClient({ registry: server.url, retry: { maxRetryAfterMs: 60_000 } })
    const controller = new AbortController()
    const pending = client.readBlob('apps/x', DIGEST, { signal: controller.signal })
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, 20)) // let the client get into its sleep
    controller.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    expect(server.requests).toHaveLength(1)
  })

  it('rejects with the abort reason while a request is in flight', async () => {
    const server = await startTestServer(() => {
      // never answers
    })
    client = createRegistryClient({ registry: server.url })
    const controller = new AbortController()
    const pending = client.getManifest('apps/x', 'v1', { signal: controller.signal })
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
    controller.abort(new Error('caller gave up'))
    await expect(pending).rejects.toThrow('caller gave up')
  })

  it('does not start when the signal is already aborted', async () => {
    const server = await faultyBlobServer([])
    client = createRegistryClient({ registry: server.url })
    await expect(
      client.headBlob('apps/x', DIGEST, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    })
    expect(server.requests).toHaveLength(0)
  })
})
