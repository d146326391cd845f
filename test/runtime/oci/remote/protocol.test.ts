import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Of } from '../../../../runtime/oci/digest.ts'
import { MediaType } from '../../../../runtime/oci/media-types.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../../runtime/oci/remote/registry-client.ts'
import { sendError, sendJson, startTestServer } from './test-server.ts'

const BLOB = Buffer.from('the quick brown fox jumps over the lazy dog')
const DIGEST = sha256Of(BLOB)

let client: RegistryClient | undefined
afterEach(async () => {
  await client?.close()
  client = undefined
})

function connect(url: string) {
  client = createRegistryClient({ registry: url, retry: { attempts: 2, baseDelayMs: 1 } })
  return client
}

describe('verification of what the registry sends', () => {
  it('fails readBlob with DIGEST_INVALID when the registry sends other bytes', async () => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-length': BLOB.length })
      res.end(Buffer.from(BLOB).fill(0x41, 0, 1))
    })
    const err = await connect(server.url)
      .readBlob('a', DIGEST)
      .catch((e) => e)
    expect(err).toMatchObject({ code: 'DIGEST_INVALID', status: 502, fault: 'system' })
  })

  it('fails readBlob with SIZE_INVALID when the blob is not the expected size', async () => {
    const server = await startTestServer((_req, res) => res.end(BLOB))
    await expect(
      connect(server.url).readBlob('a', DIGEST, { size: BLOB.length + 1 }),
    ).rejects.toMatchObject({
      code: 'SIZE_INVALID',
    })
  })

  it('fails getManifest by digest with DIGEST_INVALID when the bytes hash to something else', async () => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest })
      res.end('{"schemaVersion":2}')
    })
    await expect(connect(server.url).getManifest('a', DIGEST)).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    })
  })

  it('fails getManifest by tag when Docker-Content-Digest contradicts the bytes', async () => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'docker-content-digest': DIGEST })
      res.end('{"schemaVersion":2}')
    })
    await expect(connect(server.url).getManifest('a', 'v1')).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    })
  })

  it('computes the digest of a manifest fetched by tag without Docker-Content-Digest', async () => {
    const bytes = Buffer.from(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
    )
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end(bytes)
    })
    expect(await connect(server.url).getManifest('a', 'v1')).toEqual({
      bytes,
      digest: sha256Of(bytes),
      mediaType: MediaType.ociIndex,
    })
  })

  it('carries the registry error code, message and detail, with the status', async () => {
    const server = await startTestServer((_req, res) =>
      sendJson(res, 404, {
        errors: [{ code: 'MANIFEST_UNKNOWN', message: 'no such manifest', detail: { tag: 'v9' } }],
      }),
    )
    const err = await connect(server.url)
      .getManifest('a', 'v9')
      .catch((e) => e)
    expect(err).toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404, fault: 'user' })
    expect(err.message).toContain('no such manifest')
    expect(err.detail).toEqual({
      errors: [{ code: 'MANIFEST_UNKNOWN', message: 'no such manifest', detail: { tag: 'v9' } }],
    })
  })

  it.each([
    // no body at all: the code comes from the status and the operation
    [404, '', 'MANIFEST_UNKNOWN'],
    // a body that is not the spec's shape
    [403, '<html>forbidden</html>', 'DENIED'],
    // a code outside the spec
    [400, '{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"bad n"}]}', 'UNKNOWN'],
    [416, '', 'RANGE_INVALID'],
  ] as const)('maps a %i with body %j to %s', async (status, body, code) => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(status)
      res.end(body)
    })
    await expect(connect(server.url).getManifest('a', 'v1')).rejects.toMatchObject({ code, status })
  })
})

describe('fetchRange', () => {
  async function serve(status: number, headers: Record<string, string>, body: Buffer) {
    return startTestServer((_req, res) => {
      res.writeHead(status, headers)
      res.end(body)
    })
  }

  it('returns a 206 range that matches what was asked', async () => {
    const server = await serve(
      206,
      { 'content-range': `bytes 4-8/${BLOB.length}` },
      BLOB.subarray(4, 9),
    )
    expect((await connect(server.url).fetchRange('a', DIGEST, 4, 8)).toString()).toBe('quick')
    expect(server.requests[0]!.headers.range).toBe('bytes=4-8')
  })

  it('accepts a range the registry shortened at the end of the blob', async () => {
    const n = BLOB.length
    const server = await serve(
      206,
      { 'content-range': `bytes 40-${n - 1}/${n}` },
      BLOB.subarray(40),
    )
    expect((await connect(server.url).fetchRange('a', DIGEST, 40, 1000)).toString()).toBe('dog')
  })

  it.each([
    // another start than asked
    ['bytes 5-8/43'],
    // a longer range than asked
    ['bytes 4-9/43'],
    // shortened, though the blob goes on
    ['bytes 4-6/43'],
    // no Content-Range at all
    [undefined],
  ])(
    'fails with RANGE_INVALID when a 206 says Content-Range %s for bytes 4-8',
    async (contentRange) => {
      const headers: Record<string, string> = contentRange ? { 'content-range': contentRange } : {}
      const server = await serve(206, headers, BLOB.subarray(4, 9))
      await expect(connect(server.url).fetchRange('a', DIGEST, 4, 8)).rejects.toMatchObject({
        code: 'RANGE_INVALID',
      })
    },
  )

  it('slices a 200 full body when the registry ignored Range', async () => {
    const server = await serve(200, {}, BLOB)
    expect((await connect(server.url).fetchRange('a', DIGEST, 4, 8)).toString()).toBe('quick')
  })

  it('fails with RANGE_INVALID on 416', async () => {
    const server = await serve(416, { 'content-range': `bytes */${BLOB.length}` }, Buffer.alloc(0))
    await expect(connect(server.url).fetchRange('a', DIGEST, 100, 200)).rejects.toMatchObject({
      code: 'RANGE_INVALID',
      status: 416,
    })
  })

  it('reuses keep-alive connections for sequential range requests', async () => {
    const server = await startTestServer((req, res) => {
      const [start, end] = String(req.headers.range)
        .slice('bytes='.length)
        .split('-')
        .map(Number) as [number, number]
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${BLOB.length}` })
      res.end(BLOB.subarray(start, end + 1))
    })
    const c = connect(server.url)
    for (let i = 0; i < 20; i++) expect((await c.fetchRange('a', DIGEST, i, i + 1)).length).toBe(2)
    expect(server.requests).toHaveLength(20)
    // undici may dispatch the next request a tick before the last connection is idle again, and
    // then alternate between two; what matters is that they are reused, not one per request.
    expect(server.connections()).toBeLessThanOrEqual(2)
  })

  it('rejects a range that ends before it starts without sending anything', async () => {
    const server = await serve(200, {}, BLOB)
    await expect(connect(server.url).fetchRange('a', DIGEST, 9, 4)).rejects.toMatchObject({
      code: 'RANGE_INVALID',
    })
    expect(server.requests).toHaveLength(0)
  })

  it('getBlob hands back the 206 body with its range and the blob size', async () => {
    const server = await serve(206, { 'content-range': 'bytes 10-42/43' }, BLOB.subarray(10))
    const res = await connect(server.url).getBlob('a', DIGEST, { range: { start: 10 } })
    expect(res).toMatchObject({ status: 206, size: 43, range: { start: 10, end: 42 } })
    expect(server.requests[0]!.headers.range).toBe('bytes=10-')
    const chunks: Buffer[] = []
    for await (const c of res.body) chunks.push(c as Buffer)
    expect(Buffer.concat(chunks)).toEqual(BLOB.subarray(10))
  })
})

/**
 * An upload endpoint with the spec's chunked protocol: POST gives a relative Location and an
 * OCI-Chunk-Min-Length, each PATCH must continue where the last ended and gets a new Location.
 */
async function startUploadServer(
  minChunk: number,
  faults: { cutPatch?: number; noResume?: boolean } = {},
) {
  const received: Buffer[] = []
  const stored = new Map<string, Buffer>()
  let step = 0
  let patches = 0
  const server = await startTestServer((req, res, raw) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'HEAD') {
      const blob = stored.get(url.pathname.split('/').pop()!)
      res.writeHead(blob ? 200 : 404, blob ? { 'content-length': blob.length } : {})
      return res.end()
    }
    if (req.method === 'POST') {
      received.length = 0
      res.writeHead(202, {
        location: `/upload/${step++}?state=s`,
        'oci-chunk-min-length': String(minChunk),
      })
      return res.end()
    }
    const have = received.reduce((n, b) => n + b.length, 0)
    if (req.method === 'GET' && faults.noResume) {
      // Like distribution after a lost answer: the old upload URL is refused.
      return sendError(res, 404, 'BLOB_UPLOAD_INVALID')
    }
    if (req.method === 'GET') {
      // Upload status (end-13): what the registry holds so far.
      res.writeHead(204, {
        location: `/upload/${step++}?state=s`,
        range: `0-${Math.max(have - 1, 0)}`,
      })
      return res.end()
    }
    if (req.method === 'PATCH' && patches++ === faults.cutPatch) {
      // The connection dies after the registry stored the first half of the chunk.
      received.push(req.body.subarray(0, Math.floor(req.body.length / 2)))
      return raw.socket.destroy()
    }
    if (req.method === 'PATCH') {
      const [start, end] = String(req.headers['content-range']).split('-').map(Number)
      if (start !== have || end !== have + req.body.length - 1)
        return sendError(res, 416, 'BLOB_UPLOAD_INVALID')
      received.push(req.body)
      res.writeHead(202, { location: `/upload/${step++}?state=s`, range: `0-${end}` })
      return res.end()
    }
    if (req.method === 'PUT') {
      received.push(req.body)
      const all = Buffer.concat(received)
      const digest = url.searchParams.get('digest')!
      if (sha256Of(all) !== digest) return sendError(res, 400, 'DIGEST_INVALID')
      stored.set(digest, all)
      res.writeHead(201, { location: `/v2/a/blobs/${digest}`, 'docker-content-digest': digest })
      return res.end()
    }
    sendError(res, 405, 'UNSUPPORTED')
  })
  return { server, received, stored }
}

describe('pushBlob', () => {
  it('uploads in chunks no smaller than OCI-Chunk-Min-Length, following each relative Location', async () => {
    const { server, received } = await startUploadServer(16)
    const progress: number[] = []
    const pushed = await connect(server.url).pushBlob(
      'a',
      () => Readable.from([BLOB.subarray(0, 5), BLOB.subarray(5)]),
      { digest: DIGEST, size: BLOB.length },
      { monolithicMaxBytes: 0, chunkSize: 4, onProgress: (n) => progress.push(n) },
    )
    expect(pushed).toEqual({ digest: DIGEST, size: BLOB.length, uploaded: true })
    expect(received.map((b) => b.length)).toEqual([16, 16, 11, 0])
    expect(progress).toEqual([16, 32, 43])
    expect(server.lines()).toEqual([
      `HEAD /v2/a/blobs/${DIGEST}`,
      'POST /v2/a/blobs/uploads/',
      'PATCH /upload/0?state=s',
      'PATCH /upload/1?state=s',
      'PATCH /upload/2?state=s',
      `PUT /upload/3?state=s&digest=${encodeURIComponent(DIGEST)}`,
    ])
  })

  it('resumes a chunked upload from what the registry holds after a PATCH was cut off', async () => {
    const { server, received, stored } = await startUploadServer(0, { cutPatch: 1 })
    const pushed = await connect(server.url).pushBlob(
      'a',
      BLOB,
      { digest: DIGEST, size: BLOB.length },
      {
        monolithicMaxBytes: 0,
        chunkSize: 10,
      },
    )
    expect(pushed.uploaded).toBe(true)
    expect(stored.get(DIGEST)).toEqual(BLOB)
    // 10 bytes, then 5 of the next 10 before the cut, then the other 5, then the rest.
    expect(received.map((b) => b.length)).toEqual([10, 5, 5, 10, 10, 3, 0])
    expect(server.lines().filter((l) => !l.startsWith('PATCH'))).toEqual([
      `HEAD /v2/a/blobs/${DIGEST}`,
      'POST /v2/a/blobs/uploads/',
      'GET /upload/1?state=s',
      `PUT /upload/6?state=s&digest=${encodeURIComponent(DIGEST)}`,
    ])
  })

  it('starts the upload over when the registry cannot resume it', async () => {
    const { server, stored } = await startUploadServer(0, { cutPatch: 1, noResume: true })
    const pushed = await connect(server.url).pushBlob(
      'a',
      () => Readable.from([BLOB]),
      { digest: DIGEST, size: BLOB.length },
      {
        monolithicMaxBytes: 0,
        chunkSize: 10,
      },
    )
    expect(pushed.uploaded).toBe(true)
    expect(stored.get(DIGEST)).toEqual(BLOB)
    expect(server.lines().filter((l) => l.startsWith('POST'))).toHaveLength(2)
  })

  it('skips the upload when HEAD finds the blob', async () => {
    const { server } = await startUploadServer(0)
    const c = connect(server.url)
    await c.pushBlob('a', BLOB, { digest: DIGEST, size: BLOB.length })
    const again = await c.pushBlob('a', BLOB, { digest: DIGEST, size: BLOB.length })
    expect(again.uploaded).toBe(false)
    expect(server.lines().filter((l) => l.startsWith('POST'))).toHaveLength(1)
  })

  it('refuses bytes that do not match the digest before contacting the registry', async () => {
    const { server } = await startUploadServer(0)
    await expect(
      connect(server.url).pushBlob('a', Buffer.from('other'), { digest: DIGEST, size: 5 }),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' })
    expect(server.requests).toHaveLength(0)
  })

  it('cancels the upload and fails with DIGEST_INVALID when a stream does not match its digest', async () => {
    const { server } = await startUploadServer(0)
    const wrong = Buffer.from(BLOB).fill(0x21, 0, 1)
    await expect(
      connect(server.url).pushBlob(
        'a',
        () => Readable.from([wrong]),
        { digest: DIGEST, size: BLOB.length },
        { monolithicMaxBytes: 0, chunkSize: 8 },
      ),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' })
    await new Promise((r) => setTimeout(r, 50)) // the DELETE is sent in the background
    expect(server.lines().some((l) => l.startsWith('DELETE /upload/'))).toBe(true)
    expect(server.lines().some((l) => l.startsWith('PUT'))).toBe(false)
  })
})

describe('pagination', () => {
  it('follows Link rel="next" through every page of tags', async () => {
    const all = ['a', 'b', 'c', 'd', 'e']
    const server = await startTestServer((req, res) => {
      const url = new URL(req.url, 'http://x')
      const n = Number(url.searchParams.get('n') ?? 100)
      const last = url.searchParams.get('last')
      const from = last ? all.indexOf(last) + 1 : 0
      const tags = all.slice(from, from + n)
      const headers: Record<string, string> = {}
      if (from + n < all.length)
        headers.link = `</v2/r/tags/list?n=${n}&last=${tags.at(-1)}>; rel="next"`
      sendJson(res, 200, { name: 'r', tags }, headers)
    })
    expect(await connect(server.url).listTags('r', { n: 2 })).toEqual(all)
    expect(server.lines()).toEqual([
      'GET /v2/r/tags/list?n=2',
      'GET /v2/r/tags/list?n=2&last=b',
      'GET /v2/r/tags/list?n=2&last=d',
    ])
  })

  it('stops when a registry links a page to itself', async () => {
    const server = await startTestServer((_req, res) =>
      sendJson(res, 200, { repositories: ['x'] }, { link: '</v2/_catalog>; rel="next"' }),
    )
    expect(await connect(server.url).catalog()).toEqual(['x'])
    expect(server.requests).toHaveLength(1)
  })
})

describe('referrers', () => {
  const subject = sha256Of('subject')
  const d = (n: number, artifactType: string) => ({
    mediaType: MediaType.ociManifest,
    digest: sha256Of(String(n)),
    size: n,
    artifactType,
  })

  it('filters by artifactType itself when the registry did not, and follows pages', async () => {
    const server = await startTestServer((req, res) => {
      const page2 = req.url.includes('page=2')
      const manifests = page2 ? [d(3, 'x/a')] : [d(1, 'x/a'), d(2, 'x/b')]
      const headers: Record<string, string> = { 'content-type': MediaType.ociIndex }
      if (!page2)
        headers.link = `</v2/r/referrers/${subject}?artifactType=x%2Fa&page=2>; rel="next"`
      sendJson(res, 200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, headers)
    })
    const found = await connect(server.url).referrers('r', subject, { artifactType: 'x/a' })
    expect(found.map((x) => x.size)).toEqual([1, 3])
  })

  it('trusts the registry filter when it says OCI-Filters-Applied: artifactType', async () => {
    const server = await startTestServer((_req, res) =>
      sendJson(
        res,
        200,
        { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [d(1, 'x/other')] },
        {
          'content-type': MediaType.ociIndex,
          'oci-filters-applied': 'artifactType',
        },
      ),
    )
    expect(await connect(server.url).referrers('r', subject, { artifactType: 'x/a' })).toHaveLength(
      1,
    )
  })

  it('retries the fallback tag update when If-Match fails with 412', async () => {
    let index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [d(1, 'x/a')] }
    let puts = 0
    const server = await startTestServer((req, res) => {
      if (req.method === 'GET') {
        const bytes = Buffer.from(JSON.stringify(index))
        res.writeHead(200, { 'content-type': MediaType.ociIndex, etag: `"${sha256Of(bytes)}"` })
        return res.end(bytes)
      }
      if (puts++ === 0) {
        index = { ...index, manifests: [...index.manifests, d(2, 'x/b')] } // someone else wrote first
        return sendError(res, 412, 'DENIED')
      }
      index = JSON.parse(req.body.toString())
      res.writeHead(201)
      res.end()
    })
    const result = await connect(server.url).addReferrerToFallbackTag('r', subject, d(3, 'x/c'))
    expect(result.changed).toBe(true)
    expect(index.manifests.map((m) => m.size)).toEqual([1, 2, 3])
    const puts_ = server.requests.filter((r) => r.method === 'PUT')
    expect(puts_.map((r) => r.headers['if-match'])).toHaveLength(2)
    expect(puts_[0]!.headers['if-match']).not.toBe(puts_[1]!.headers['if-match'])
  })
})
