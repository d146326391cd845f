import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { pushBlob, startTestEdge } from '../support/edge-client.ts'
import { parseByteranges } from '../support/multipart.ts'
import { startDistribution } from '../support/registry.ts'

/**
 * Every Range form against the edge and against CNCF distribution 2.8 (Debian's docker-registry,
 * which serves filesystem blobs with Go's http.ServeContent) for the same blob. The edge is held
 * to RFC 9110; distribution's answers are recorded as they are, so where the two differ the table
 * says which is right and why.
 */
const SIZE = 10_000
const blob = randomBytes(SIZE)
let edgeBlob: string
let distributionBlob: string

beforeAll(async () => {
  const edge = await startTestEdge()
  const distribution = await startDistribution()
  const e = await pushBlob(edge.url, 'cmp/blob', blob)
  const d = await pushBlob(distribution.url, 'cmp/blob', blob)
  expect(e).toBe(d)
  edgeBlob = `${edge.url}/v2/cmp/blob/blobs/${e}`
  distributionBlob = `${distribution.url}/v2/cmp/blob/blobs/${d}`
})

/** What a response carried: status, Content-Range, and the byte ranges its body held. */
interface Answer {
  status: number
  contentRange: string | null
  /** [start, end] of each range in the body, checked against the blob; 'full' = all of it. */
  body?: 'full' | [number, number][]
}

async function ask(url: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  const res = await fetch(url, { headers, method })
  const answer: Answer = { status: res.status, contentRange: res.headers.get('content-range') }
  if (res.status === 416 || res.status === 304 || res.status === 412 || method === 'HEAD') {
    // distribution's 416 declares the blob's size as Content-Length on a short text body and then
    // closes the connection, so its body is not read.
    await res.body?.cancel()
    return answer
  }
  const body = Buffer.from(await res.arrayBuffer())
  const type = res.headers.get('content-type') ?? ''
  if (res.status === 200) {
    expect(body.equals(blob)).toBe(true)
    answer.body = 'full'
  } else if (type.startsWith('multipart/byteranges')) {
    answer.body = parseByteranges(type, body).map((p) => {
      const [start, end] = p.contentRange.slice(6).split('/')[0]!.split('-').map(Number) as [number, number]
      expect(p.data.equals(blob.subarray(start, end + 1))).toBe(true)
      return [start, end]
    })
  } else {
    const [start, end] = answer.contentRange!.slice(6).split('/')[0]!.split('-').map(Number) as [number, number]
    expect(body.equals(blob.subarray(start, end + 1))).toBe(true)
    answer.body = [[start, end]]
  }
  return answer
}

const partial = (...ranges: [number, number][]): Answer => ({
  status: 206,
  contentRange: ranges.length === 1 ? `bytes ${ranges[0]![0]}-${ranges[0]![1]}/${SIZE}` : null,
  body: ranges,
})
const full: Answer = { status: 200, contentRange: null, body: 'full' }
const unsatisfiable: Answer = { status: 416, contentRange: `bytes */${SIZE}` }

interface Case {
  range: string
  edge: Answer
  /** distribution's recorded answer when it differs from the edge's. */
  distribution?: Answer
  /** why they differ, and which one RFC 9110 backs */
  why?: string
}

const cases: Case[] = [
  { range: 'bytes=0-9', edge: partial([0, 9]) },
  { range: 'bytes=9990-', edge: partial([9990, 9999]) },
  { range: 'bytes=-5', edge: partial([9995, 9999]) },
  { range: 'bytes=-20000', edge: partial([0, 9999]) },
  { range: 'bytes=0-99999', edge: partial([0, 9999]) },
  { range: 'bytes=0-0', edge: partial([0, 0]) },
  { range: 'bytes=0-1,5-6', edge: partial([0, 1], [5, 6]) },
  { range: 'bytes=5000-5009,-3,0-0', edge: partial([5000, 5009], [9997, 9999], [0, 0]) },
  { range: 'bytes= 0-1 , 3-4', edge: partial([0, 1], [3, 4]) },
  { range: 'bytes=1-2,,3-4', edge: partial([1, 2], [3, 4]) },
  { range: 'bytes=0-1,20000-30000', edge: partial([0, 1]) },
  { range: 'bytes=0-9999,0-9999', edge: full },
  { range: 'bytes=20000-', edge: unsatisfiable },
  { range: 'bytes=10000-10000', edge: unsatisfiable },
  {
    range: 'bytes=5-2',
    edge: unsatisfiable,
    distribution: { status: 416, contentRange: null },
    why: 'RFC 9110 §15.5.17: a 416 SHOULD carry Content-Range: bytes */size; Go omits it for invalid (not just non-overlapping) ranges',
  },
  {
    range: 'bytes=abc',
    edge: unsatisfiable,
    distribution: { status: 416, contentRange: null },
    why: 'same as above: malformed ranges are rejected by both, but only the edge says the size',
  },
  {
    range: 'bytes=-0',
    edge: unsatisfiable,
    distribution: { status: 206, contentRange: `bytes ${SIZE}-${SIZE - 1}/${SIZE}`, body: [[SIZE, SIZE - 1]] },
    why: 'RFC 9110 §14.1.1: a zero suffix-length is unsatisfiable; Go answers 206 with an impossible, empty Content-Range',
  },
  {
    range: 'items=0-5',
    edge: full,
    distribution: { status: 416, contentRange: null },
    why: 'RFC 9110 §14.2: a server MUST ignore a Range with a unit it does not understand; Go rejects it',
  },
  {
    range: 'BYTES=0-1',
    edge: partial([0, 1]),
    distribution: { status: 416, contentRange: null },
    why: 'RFC 9110 §14.1: range units are case-insensitive; Go only knows lowercase "bytes="',
  },
  {
    range: 'bytes=,',
    edge: unsatisfiable,
    distribution: full,
    why: 'a range set needs at least one range (RFC 9110 §14.1.1); §14.2 lets a server ignore or reject it, the edge rejects',
  },
]

describe('Range on blob GET: the edge versus distribution 2.8', () => {
  it.each(cases)('$range', async ({ range, edge, distribution, why }) => {
    const [e, d] = await Promise.all([ask(edgeBlob, { range }), ask(distributionBlob, { range })])
    expect(e).toEqual(edge)
    expect(d, why).toEqual(distribution ?? edge)
  })

  it('answers HEAD with Range like GET, as distribution does', async () => {
    const [e, d] = await Promise.all([ask(edgeBlob, { range: 'bytes=10-19' }, 'HEAD'), ask(distributionBlob, { range: 'bytes=10-19' }, 'HEAD')])
    expect(e).toEqual({ status: 206, contentRange: `bytes 10-19/${SIZE}` })
    expect(d).toEqual(e)
  })

  it.each([
    // conditional requests, where both agree
    [{ 'if-none-match': '"DIGEST"' }, { status: 304, contentRange: null }],
    [{ range: 'bytes=0-3', 'if-range': '"DIGEST"' }, partial([0, 3])],
    [{ range: 'bytes=0-3', 'if-range': '"sha256:0000"' }, full],
    [{ 'if-match': '"sha256:0000"' }, { status: 412, contentRange: null }],
  ])('%j', async (template, expected) => {
    const digest = edgeBlob.split('/').at(-1)!
    const headers = Object.fromEntries(Object.entries(template).map(([k, v]) => [k, v.replace('DIGEST', digest)]))
    const [e, d] = await Promise.all([ask(edgeBlob, headers), ask(distributionBlob, headers)])
    expect(e).toEqual(expected)
    expect(d).toEqual(expected)
  })

  it('sends the same blob-level headers as distribution on a 206', async () => {
    const [e, d] = await Promise.all([fetch(edgeBlob, { headers: { range: 'bytes=0-0' } }), fetch(distributionBlob, { headers: { range: 'bytes=0-0' } })])
    for (const name of ['accept-ranges', 'etag', 'docker-content-digest', 'content-type', 'cache-control', 'content-length']) {
      expect(e.headers.get(name), name).toBe(d.headers.get(name))
    }
    await Promise.all([e.arrayBuffer(), d.arrayBuffer()])
  })
})
