import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { errorCode, pushBlob, startTestEdge } from '../support/edge-client.ts'
import { parseByteranges } from '../support/multipart.ts'

const blob = randomBytes(3 * 1024 * 1024 + 17) // spans several read chunks, odd size
let url: string
let digest: string
let blobUrl: string

beforeAll(async () => {
  ;({ url } = await startTestEdge())
  digest = await pushBlob(url, 'apps/range', blob)
  blobUrl = `${url}/v2/apps/range/blobs/${digest}`
})

const get = (headers: Record<string, string> = {}, method = 'GET') => fetch(blobUrl, { method, headers })

describe('GET /v2/<name>/blobs/<digest> with Range', () => {
  it('serves the whole blob with Accept-Ranges, ETag and the digest when there is no Range', async () => {
    const res = await get()
    expect(res.status).toBe(200)
    expect(res.headers.get('accept-ranges')).toBe('bytes')
    expect(res.headers.get('etag')).toBe(`"${digest}"`)
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect(res.headers.get('content-length')).toBe(String(blob.length))
    expect(Buffer.from(await res.arrayBuffer()).equals(blob)).toBe(true)
  })

  it.each([
    ['bytes=0-9', 0, 9],
    ['bytes=1048570-2097160', 1048570, 2097160], // crosses read-chunk boundaries
    [`bytes=${blob.length - 100}-`, blob.length - 100, blob.length - 1],
    ['bytes=-4096', blob.length - 4096, blob.length - 1],
    ['bytes=5-99999999999', 5, blob.length - 1],
  ])('answers %s with 206, Content-Range and exactly those bytes', async (range, start, end) => {
    const res = await get({ range })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${blob.length}`)
    expect(res.headers.get('content-length')).toBe(String(end - start + 1))
    // The digest header is the whole blob's, also on a partial response.
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect(Buffer.from(await res.arrayBuffer()).equals(blob.subarray(start, end + 1))).toBe(true)
  })

  it('answers several ranges with a multipart/byteranges body whose parts carry the bytes', async () => {
    const res = await get({ range: 'bytes=0-1,1048575-1048585,-3' })
    expect(res.status).toBe(206)
    const type = res.headers.get('content-type')!
    expect(type).toMatch(/^multipart\/byteranges; boundary=/)
    const body = Buffer.from(await res.arrayBuffer())
    expect(res.headers.get('content-length')).toBe(String(body.length))
    const parts = parseByteranges(type, body)
    expect(parts.map((p) => p.contentRange)).toEqual([
      `bytes 0-1/${blob.length}`,
      `bytes 1048575-1048585/${blob.length}`,
      `bytes ${blob.length - 3}-${blob.length - 1}/${blob.length}`,
    ])
    expect(parts[0]!.data.equals(blob.subarray(0, 2))).toBe(true)
    expect(parts[1]!.data.equals(blob.subarray(1048575, 1048586))).toBe(true)
    expect(parts[2]!.data.equals(blob.subarray(blob.length - 3))).toBe(true)
    expect(parts.every((p) => p.contentType === 'application/octet-stream')).toBe(true)
  })

  it('answers a multi-range request with one satisfiable range as a plain 206', async () => {
    const res = await get({ range: `bytes=0-1,${blob.length + 10}-` })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes 0-1/${blob.length}`)
  })

  it.each([
    ['bytes=999999999-'], // past the end
    ['bytes=-0'], // empty suffix
    ['bytes=9-2'], // inverted
    ['bytes=oops'], // malformed
  ])('returns 416 with Content-Range: bytes */size for %s', async (range) => {
    const res = await get({ range })
    expect(res.status).toBe(416)
    expect(res.headers.get('content-range')).toBe(`bytes */${blob.length}`)
    expect(await errorCode(res)).toBe('RANGE_INVALID')
  })

  it('ignores a range unit it does not know and serves the whole blob', async () => {
    const res = await get({ range: 'items=0-5' })
    expect(res.status).toBe(200)
    expect((await res.arrayBuffer()).byteLength).toBe(blob.length)
  })

  it('answers HEAD like GET, without a body', async () => {
    const res = await get({ range: 'bytes=10-19' }, 'HEAD')
    expect(res.status).toBe(206)
    expect(res.headers.get('content-length')).toBe('10')
    expect(res.headers.get('content-range')).toBe(`bytes 10-19/${blob.length}`)
    expect((await res.arrayBuffer()).byteLength).toBe(0)
    const multi = await get({ range: 'bytes=0-1,4-5' }, 'HEAD')
    expect(multi.status).toBe(206)
    expect(Number(multi.headers.get('content-length'))).toBeGreaterThan(4)
  })
})

describe('conditional blob requests', () => {
  it('returns 304 for If-None-Match with the digest ETag, and 200 for another tag', async () => {
    const hit = await get({ 'if-none-match': `"${digest}"` })
    expect(hit.status).toBe(304)
    expect(hit.headers.get('etag')).toBe(`"${digest}"`)
    expect((await hit.arrayBuffer()).byteLength).toBe(0)
    expect((await get({ 'if-none-match': '*' })).status).toBe(304) // * matches any current ETag
    // If-None-Match compares weakly (RFC 9110 §13.1.2), so a weak tag of the digest matches too.
    expect((await get({ 'if-none-match': `"sha256:00", W/"${digest}"` })).status).toBe(304)
    const miss = await get({ 'if-none-match': '"sha256:0000"' })
    expect(miss.status).toBe(200)
    await miss.arrayBuffer()
  })

  it('honours Range only when If-Range names the current ETag', async () => {
    const same = await get({ range: 'bytes=0-3', 'if-range': `"${digest}"` })
    expect(same.status).toBe(206)
    await same.arrayBuffer()
    const other = await get({ range: 'bytes=0-3', 'if-range': '"sha256:0000"' })
    expect(other.status).toBe(200)
    expect((await other.arrayBuffer()).byteLength).toBe(blob.length)
    // A date cannot match: blobs have no Last-Modified.
    const dated = await get({ range: 'bytes=0-3', 'if-range': 'Sun, 22 Nov 2026 10:00:00 GMT' })
    expect(dated.status).toBe(200)
    await dated.arrayBuffer()
  })

  it('returns 412 when If-Match names another ETag', async () => {
    const res = await get({ 'if-match': '"sha256:0000"' })
    expect(res.status).toBe(412)
    const ok = await get({ 'if-match': `"${digest}"`, range: 'bytes=0-0' })
    expect(ok.status).toBe(206)
    await ok.arrayBuffer()
  })
})
