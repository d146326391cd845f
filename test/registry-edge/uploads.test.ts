import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkStore } from '../../registry-edge/store/check-store.ts'
import { errorCode, expectStatus, pushBlob, sha256, startTestEdge } from '../support/edge-client.ts'

let url: string
let store: string

beforeAll(async () => {
  ;({ url, store } = await startTestEdge())
})

async function readBlob(repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`)
  await expectStatus(res, 200)
  return Buffer.from(await res.arrayBuffer())
}

async function startSession(repo: string): Promise<URL> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await expectStatus(res, 202)
  expect(res.headers.get('range')).toBe('0-0')
  expect(res.headers.get('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/)
  return new URL(res.headers.get('location')!, url)
}

const patch = (location: URL, body: Uint8Array, range?: string) =>
  fetch(location, { method: 'PATCH', body, headers: range ? { 'content-range': range } : {} })

describe('blob uploads', () => {
  it.each(['monolithic', 'post-put', 'chunked'] as const)('stores a %s upload byte for byte', async (mode) => {
    const data = randomBytes(300_000)
    const digest = await pushBlob(url, 'apps/up', data, mode, 100_000)
    expect((await readBlob('apps/up', digest)).equals(data)).toBe(true)
  })

  it('accepts an empty blob', async () => {
    const digest = await pushBlob(url, 'apps/up', new Uint8Array(0), 'monolithic')
    expect(digest).toBe(sha256(''))
    expect((await readBlob('apps/up', digest)).length).toBe(0)
  })

  it('reports progress with Range after each chunk and takes the last chunk with the PUT', async () => {
    const data = randomBytes(25_000)
    const location = await startSession('apps/chunks')
    const first = await patch(location, data.subarray(0, 10_000), '0-9999')
    expect(first.status).toBe(202)
    expect(first.headers.get('range')).toBe('0-9999')
    const status = await fetch(location)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe('0-9999')
    // A streamed chunk without Content-Range appends (what skopeo sends).
    expect((await patch(location, data.subarray(10_000, 20_000))).headers.get('range')).toBe('0-19999')
    const put = await fetch(`${location}?digest=${sha256(data)}`, {
      method: 'PUT',
      body: data.subarray(20_000),
      headers: { 'content-range': '20000-24999' },
    })
    expect(put.status).toBe(201)
    expect(put.headers.get('location')).toBe(`/v2/apps/chunks/blobs/${sha256(data)}`)
    expect(put.headers.get('docker-content-digest')).toBe(sha256(data))
    expect((await readBlob('apps/chunks', sha256(data))).equals(data)).toBe(true)
  })

  it('returns 416 for an out-of-order chunk, keeps the session, and says where to resume', async () => {
    const data = randomBytes(20_000)
    const location = await startSession('apps/order')
    await expectStatus(await patch(location, data.subarray(0, 10_000), '0-9999'), 202)
    for (const range of ['15000-19999', '0-9999', '9999-19998']) {
      const res = await patch(location, data.subarray(10_000), range)
      expect(res.status, range).toBe(416)
      expect(res.headers.get('range')).toBe('0-9999')
      expect(res.headers.get('location')).toBe(location.pathname)
      expect(await errorCode(res)).toBe('RANGE_INVALID')
    }
    await expectStatus(await patch(location, data.subarray(10_000), '10000-19999'), 202)
    await expectStatus(await fetch(`${location}?digest=${sha256(data)}`, { method: 'PUT' }), 201)
    expect((await readBlob('apps/order', sha256(data))).equals(data)).toBe(true)
  })

  it('returns 416 BLOB_UPLOAD_INVALID for a Content-Range not in the spec form, and says where to resume', async () => {
    const location = await startSession('apps/malformed')
    await expectStatus(await patch(location, randomBytes(100), '0-99'), 202)
    const res = await patch(location, randomBytes(100), 'bytes 100-199/200')
    expect(res.status).toBe(416)
    expect(await errorCode(res)).toBe('BLOB_UPLOAD_INVALID')
    expect(res.headers.get('range')).toBe('0-99')
    expect(res.headers.get('location')).toBe(location.pathname)
  })

  it('cancels a session with DELETE', async () => {
    const location = await startSession('apps/cancel')
    await expectStatus(await patch(location, randomBytes(10)), 202)
    expect((await fetch(location, { method: 'DELETE' })).status).toBe(204)
    const after = await fetch(location)
    expect(after.status).toBe(404)
    expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN')
  })

  it('keeps concurrent pushes of the same blob safe: all succeed, one copy, no leftovers', async () => {
    const { url, store } = await startTestEdge()
    const readBlob = async (repo: string, digest: string) =>
      Buffer.from(await (await fetch(`${url}/v2/${repo}/blobs/${digest}`)).arrayBuffer())
    const data = randomBytes(2 * 1024 * 1024)
    const modes = ['monolithic', 'post-put', 'chunked'] as const
    const digests = await Promise.all(
      Array.from({ length: 9 }, (_, i) => pushBlob(url, `apps/race${i % 3}`, data, modes[i % 3], 256 * 1024)),
    )
    expect(new Set(digests)).toEqual(new Set([sha256(data)]))
    for (const repo of ['apps/race0', 'apps/race1', 'apps/race2']) {
      expect((await readBlob(repo, sha256(data))).equals(data)).toBe(true)
    }
    expect(await readdir(join(store, 'uploads'))).toEqual([])
    expect(await readdir(join(store, 'tmp'))).toEqual([])
    expect(await checkStore(store)).toEqual([])
  })
})

describe('cross-repository mount', () => {
  it('links a blob from another repository with 201', async () => {
    const data = randomBytes(1000)
    const digest = await pushBlob(url, 'apps/source', data)
    const res = await fetch(`${url}/v2/apps/target/blobs/uploads/?mount=${digest}&from=apps/source`, { method: 'POST' })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/v2/apps/target/blobs/${digest}`)
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect((await readBlob('apps/target', digest)).equals(data)).toBe(true)
  })

  it('starts an ordinary upload (202) when the source repository lacks the blob', async () => {
    const digest = sha256('not pushed anywhere')
    const res = await fetch(`${url}/v2/apps/target/blobs/uploads/?mount=${digest}&from=apps/source`, { method: 'POST' })
    expect(res.status).toBe(202)
    expect(res.headers.get('location')).toMatch(/^\/v2\/apps\/target\/blobs\/uploads\/[0-9a-f-]{36}$/)
    expect((await fetch(`${url}/v2/apps/target/blobs/${digest}`)).status).toBe(404)
  })
})
