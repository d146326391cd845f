import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../registry-edge/auth/password-hash.ts'
import type { DiskStore } from '../../registry-edge/store/disk-store.ts'
import { openDiskStore } from '../../registry-edge/store/disk-store.ts'
import { errorCode, expectStatus, pushBlob, sha256, startTestEdge } from '../support/edge-client.ts'
import { fetchFrom } from '../support/fetch-from.ts'
import { tmpDir } from '../support/tmp.ts'

const KiB = 1024

async function sessions(store: string): Promise<string[]> {
  return readdir(join(store, 'uploads'))
}

async function open(url: string, repo = 'apps/a', f: typeof fetch = fetch): Promise<Response> {
  return f(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
}

async function metric(url: string, name: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return text.split('\n').filter((l) => l.startsWith(name))
}

/** A PATCH whose body is streamed (chunked transfer coding, no length) from `parts`. */
function streamedPatch(location: string, parts: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(location, { method: 'PATCH' }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    const write = (i: number): void => {
      if (i === parts.length) return void req.end()
      if (req.destroyed) return
      req.write(parts[i], () => setTimeout(() => write(i + 1), 5))
    }
    write(0)
  })
}

describe('blob size limit', () => {
  it('takes a blob of exactly maxBlobBytes, in one request or in chunks', async () => {
    const { url } = await startTestEdge({ uploads: { maxBlobBytes: 64 * KiB } })
    await pushBlob(url, 'apps/a', randomBytes(64 * KiB), 'monolithic')
    await pushBlob(url, 'apps/a', randomBytes(64 * KiB), 'chunked', 16 * KiB)
  })

  // Each row: a way of sending 1 byte more than the limit allows.
  it.each([
    ['a monolithic POST whose Content-Length is too large', 'monolithic'],
    ['a PUT closing a session with a body too large', 'post-put'],
    ['a chunk whose Content-Range ends past the limit', 'chunked'],
  ] as const)('refuses %s with 413 SIZE_INVALID and keeps nothing', async (_name, mode) => {
    const { url, store } = await startTestEdge({ uploads: { maxBlobBytes: 64 * KiB } })
    const data = randomBytes(64 * KiB + 1)
    await expect(pushBlob(url, 'apps/a', data, mode, 48 * KiB)).rejects.toThrow(/expected 20[12], got 413: .*SIZE_INVALID/)
    expect(await sessions(store)).toEqual([])
    expect((await fetch(`${url}/v2/apps/a/blobs/${sha256(data)}`)).status).toBe(404)
    expect(await metric(url, 'thaw_edge_uploads_refused_total')).toEqual([
      'thaw_edge_uploads_refused_total{reason="blob_too_large",region="local"} 1',
    ])
  })

  it('stops a streamed chunk without a length as soon as it passes the limit, and drops the session', async () => {
    const { url, store } = await startTestEdge({ uploads: { maxBlobBytes: 256 * KiB } })
    const post = await open(url)
    const location = new URL(post.headers.get('location')!, url).href
    const parts = Array.from({ length: 64 }, () => randomBytes(16 * KiB)) // 1 MiB in all
    const res = await streamedPatch(location, parts)
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body).errors[0].code).toBe('SIZE_INVALID')
    expect(await sessions(store)).toEqual([])
    const after = await fetch(location)
    expect(after.status).toBe(404)
    expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN')
  })
})

describe('open session limits', () => {
  it('refuses a client past maxSessionsPerClient with 429 TOOMANYREQUESTS and Retry-After, and not others', async () => {
    const { url, store } = await startTestEdge({ uploads: { maxSessionsPerClient: 3 } })
    for (let i = 0; i < 3; i++) await expectStatus(await open(url), 202)
    const refused = await open(url)
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await errorCode(refused)).toBe('TOOMANYREQUESTS')
    // A monolithic push opens a session too.
    const blob = randomBytes(100)
    const monolithic = await fetch(`${url}/v2/apps/a/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob })
    expect(monolithic.status).toBe(429)
    // Another address is another client.
    await expectStatus(await open(url, 'apps/a', fetchFrom('127.0.0.2')), 202)
    expect(await sessions(store)).toHaveLength(4)
    expect(await metric(url, 'thaw_edge_uploads_refused_total')).toEqual([
      'thaw_edge_uploads_refused_total{reason="too_many_client_sessions",region="local"} 2',
    ])
  })

  it('gives a slot back when a session is finished or cancelled', async () => {
    const { url } = await startTestEdge({ uploads: { maxSessionsPerClient: 1 } })
    await pushBlob(url, 'apps/a', randomBytes(10))
    await pushBlob(url, 'apps/a', randomBytes(10))
    const post = await open(url)
    await expectStatus(post, 202)
    await expectStatus(await fetch(new URL(post.headers.get('location')!, url), { method: 'DELETE' }), 204)
    await expectStatus(await open(url), 202)
  })

  it('counts a signed-in user as one client, from whatever address', async () => {
    const { url } = await startTestEdge({
      uploads: { maxSessionsPerClient: 2 },
      auth: {
        users: { alice: { password: await hashPassword('pw') } },
        access: [{ repository: 'apps/**', users: ['alice'], actions: ['*'] }],
      },
    })
    const headers = { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` }
    const post = (f: typeof fetch) => f(`${url}/v2/apps/a/blobs/uploads/`, { method: 'POST', headers })
    await expectStatus(await post(fetch), 202)
    await expectStatus(await post(fetchFrom('127.0.0.2')), 202)
    expect((await post(fetchFrom('127.0.0.3'))).status).toBe(429)
  })

  it('refuses everyone past maxSessions', async () => {
    const { url } = await startTestEdge({ uploads: { maxSessions: 2, maxSessionsPerClient: 10 } })
    await expectStatus(await open(url), 202)
    await expectStatus(await open(url, 'apps/a', fetchFrom('127.0.0.2')), 202)
    const refused = await open(url, 'apps/a', fetchFrom('127.0.0.3'))
    expect(refused.status).toBe(429)
    expect(await errorCode(refused)).toBe('TOOMANYREQUESTS')
    expect(await metric(url, 'thaw_edge_uploads_refused_total')).toEqual([
      'thaw_edge_uploads_refused_total{reason="too_many_sessions",region="local"} 1',
    ])
  })
})

describe('idle sessions', () => {
  it('removes a session idle past its TTL while the edge runs, with its bytes', async () => {
    const { url, store } = await startTestEdge({ uploads: { idleTtlMs: 300, sweepIntervalMs: 50 } })
    const post = await open(url)
    const location = new URL(post.headers.get('location')!, url)
    await expectStatus(await fetch(location, { method: 'PATCH', body: randomBytes(100 * KiB) }), 202)
    expect(await sessions(store)).toHaveLength(1)
    await expect.poll(() => sessions(store), { timeout: 10_000, interval: 50 }).toEqual([])
    const after = await fetch(location, { method: 'PATCH', body: randomBytes(10) })
    expect(after.status).toBe(404)
    expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN')
    expect(await metric(url, 'thaw_edge_upload_sessions_expired_total')).toEqual([
      'thaw_edge_upload_sessions_expired_total{region="local"} 1',
    ])
    // Its slot is free again.
    await expectStatus(await open(url), 202)
  })

  it('keeps a session whose requests keep coming, and one with a chunk in progress', async () => {
    const dir = await tmpDir()
    const store: DiskStore = await openDiskStore(dir, { uploads: { idleTtlMs: 1000, sweepIntervalMs: 3_600_000 } })
    const active = await store.startUpload('apps/a', 'c1')
    const slow = await store.startUpload('apps/a', 'c1')
    const idle = await store.startUpload('apps/a', 'c1')
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const writing = store.appendUpload('apps/a', slow.id, { body: chunks(Buffer.from('a'), held, Buffer.from('b')) })
    // 1.3 s with a request on `active` every 100 ms, none on `idle`, `slow` inside its chunk.
    const until = Date.now() + 1300
    while (Date.now() < until) {
      await store.appendUpload('apps/a', active.id, { body: chunks(Buffer.from('x')) })
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(await store.sweepUploads()).toBe(1)
    await expect(store.getUpload('apps/a', idle.id)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' })
    expect((await store.getUpload('apps/a', active.id)).offset).toBeGreaterThan(5)
    release()
    expect((await writing).offset).toBe(2)
    await store.close()
  })

  it('removes at startup the sessions that went idle while the edge was down', async () => {
    const dir = await tmpDir()
    const first = await openDiskStore(dir)
    await first.startUpload('apps/a', 'c1')
    await first.close()
    await new Promise((r) => setTimeout(r, 50))
    const second = await openDiskStore(dir, { uploads: { idleTtlMs: 10 } })
    expect(second.recovery).toMatchObject({ uploadsRemoved: 1, uploadsKept: 0 })
    expect(await readdir(join(dir, 'uploads'))).toEqual([])
    await second.close()
  })
})

async function* chunks(...parts: (Uint8Array | Promise<void>)[]): AsyncIterable<Uint8Array> {
  for (const p of parts) {
    if (p instanceof Promise) await p
    else yield p
  }
}
