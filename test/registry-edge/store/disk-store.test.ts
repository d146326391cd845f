import { randomBytes, randomUUID } from 'node:crypto'
import { appendFile, mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseDigest } from '../../../runtime/oci/index.ts'
import { checkStore } from '../../../registry-edge/store/check-store.ts'
import { openDiskStore } from '../../../registry-edge/store/disk-store.ts'
import { recoverStore } from '../../../registry-edge/store/recover-store.ts'
import { StoreLayout } from '../../../registry-edge/store/store-layout.ts'
import { sha256 } from '../../support/edge-client.ts'
import { tmpDir } from '../../support/tmp.ts'

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield p
}

async function* failingAfter(part: Uint8Array): AsyncIterable<Uint8Array> {
  yield part
  throw new Error('client went away')
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = []
  for await (const c of stream) out.push(Buffer.from(c))
  return Buffer.concat(out)
}

describe('disk store', () => {
  it('rolls a failed chunk back, so the session is as it was before it', async () => {
    const store = await openDiskStore(await tmpDir())
    const { id } = await store.startUpload('apps/a')
    await store.appendUpload('apps/a', id, { body: chunks(Buffer.from('hello ')) })
    await expect(store.appendUpload('apps/a', id, { body: failingAfter(Buffer.from('garbage')) })).rejects.toThrow('client went away')
    expect((await store.getUpload('apps/a', id)).offset).toBe(6)
    await store.appendUpload('apps/a', id, { body: chunks(Buffer.from('world')) })
    const digest = parseDigest(sha256('hello world'))
    expect(await store.finishUpload('apps/a', id, digest)).toEqual({ digest, size: 11 })
    expect((await readAll(store.readBlob(digest, { start: 0, end: 10 }))).toString()).toBe('hello world')
  })

  it('resumes an upload session after a restart, recomputing its hash from disk', async () => {
    const dir = await tmpDir()
    const first = await openDiskStore(dir)
    const { id } = await first.startUpload('apps/a')
    const data = randomBytes(100_000)
    await first.appendUpload('apps/a', id, { body: chunks(data.subarray(0, 60_000)) })
    // A process killed in the middle of a chunk leaves some of its bytes in the data file.
    await appendFile(join(dir, 'uploads', id, 'data'), data.subarray(60_000, 70_000))
    const second = await openDiskStore(dir)
    expect(second.recovery).toMatchObject({ uploadsKept: 1, uploadsRemoved: 0 })
    const status = await second.getUpload('apps/a', id)
    expect(status.offset).toBe(70_000)
    await second.appendUpload('apps/a', id, { body: chunks(data.subarray(70_000)), start: 70_000 })
    const digest = parseDigest(sha256(data))
    await second.finishUpload('apps/a', id, digest)
    expect((await readAll(second.readBlob(digest, { start: 0, end: data.length - 1 }))).equals(data)).toBe(true)
    expect(await checkStore(dir)).toEqual([])
  })

  it('cleans temp files and broken or idle sessions at startup, and keeps live ones', async () => {
    const dir = await tmpDir()
    const layout = new StoreLayout(dir)
    await recoverStore(layout)
    const now = Date.now()
    const make = async (id: string, state?: object, data = true, lastWrite = now) => {
      await mkdir(layout.upload(id), { recursive: true })
      if (state) await writeFile(layout.uploadState(id), JSON.stringify(state))
      if (data) {
        await writeFile(layout.uploadData(id), 'abc')
        await utimes(layout.uploadData(id), lastWrite / 1000, lastWrite / 1000)
      }
    }
    const live = randomUUID()
    await make(live, { repository: 'a', startedAt: now })
    const resumed = randomUUID()
    await make(resumed, { repository: 'a', startedAt: now - 5000 }) // old, but written to lately
    await make(randomUUID(), { repository: 'a', startedAt: now - 5000 }, true, now - 5000) // idle past the TTL
    await make(randomUUID(), undefined) // crashed before its state was written
    await make(randomUUID(), { repository: 'a', startedAt: now }, false) // crashed after its data moved
    await make('not-a-uuid', { repository: 'a', startedAt: now }) // not made by the store
    await writeFile(join(layout.tmpDir, randomUUID()), 'half a manifest')
    const store = await openDiskStore(dir, { uploads: { idleTtlMs: 1000 } })
    expect(store.recovery).toEqual({ tmpRemoved: 1, uploadsRemoved: 4, uploadsKept: 2 })
    expect((await readdir(layout.uploadsDir)).sort()).toEqual([live, resumed].sort())
    expect(await readdir(layout.tmpDir)).toEqual([])
    await store.close()
  })

  it('finds corrupted content and dangling links', async () => {
    const dir = await tmpDir()
    const store = await openDiskStore(dir)
    const { id } = await store.startUpload('apps/a')
    await store.appendUpload('apps/a', id, { body: chunks(Buffer.from('content')) })
    const digest = parseDigest(sha256('content'))
    await store.finishUpload('apps/a', id, digest)
    expect(await checkStore(dir)).toEqual([])
    await writeFile(store.layout.blob(digest), 'tampered')
    await mkdir(store.layout.tagsDir('apps/a'), { recursive: true })
    await writeFile(store.layout.tag('apps/a', 'v1'), sha256('no such manifest'))
    const problems = await checkStore(dir)
    expect(problems).toHaveLength(3) // the blob, the layer link to it, the tag
    expect(problems.join('\n')).toMatch(/has content sha256:/)
    expect(problems.join('\n')).toMatch(/tags missing/)
  })
})
