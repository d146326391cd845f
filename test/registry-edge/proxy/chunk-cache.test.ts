import { randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { sha256Of } from '../../../runtime/oci/index.ts'
import type { ByteRange } from '../../../registry-edge/backend/registry-backend.ts'
import { ChunkCache, type CacheBlob, type ChunkCacheOptions } from '../../../registry-edge/proxy/chunk-cache.ts'
import { DiskChunkStore } from '../../../registry-edge/proxy/disk-chunk-store.ts'
import { tmpDir } from '../../support/tmp.ts'

const CHUNK = 1024

/** A blob whose source is a function over its bytes that records every range asked for. */
function testBlob(bytes: Buffer, options: { failFirst?: number; corrupt?: boolean; delayMs?: number } = {}) {
  const asked: ByteRange[] = []
  let failures = options.failFirst ?? 0
  const blob: CacheBlob = {
    digest: sha256Of(bytes),
    size: bytes.length,
    source: async (range) => {
      asked.push(range)
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs))
      if (failures-- > 0) throw new Error('upstream failed')
      const slice = Buffer.from(bytes.subarray(range.start, range.end + 1))
      if (options.corrupt) slice[0] = slice[0]! ^ 0xff
      // Arrive in odd-sized pieces, as a network delivers them.
      return (async function* () {
        for (let i = 0; i < slice.length; i += 700) yield slice.subarray(i, i + 700)
      })()
    },
  }
  return { blob, asked }
}

async function openCache(options: Partial<ChunkCacheOptions> & { diskBytes?: number } = {}) {
  const root = await tmpDir('thaw-chunk-cache-')
  const disk = await DiskChunkStore.open(root, { chunkSize: CHUNK, maxBytes: options.diskBytes ?? 1 << 30 })
  const hits: string[] = []
  const invalid: string[] = []
  const cache = new ChunkCache({
    disk,
    memoryBytes: 1 << 20,
    fillConcurrency: 0,
    events: { hit: (layer) => hits.push(layer), miss: () => hits.push('miss'), invalid: (d) => invalid.push(d) },
    ...options,
  })
  return { root, disk, cache, hits, invalid }
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const part of stream as unknown as AsyncIterable<Uint8Array>) parts.push(part)
  return Buffer.concat(parts)
}

describe('ChunkCache', () => {
  it('serves any range with the right bytes, asking the source only for chunk-aligned ranges', async () => {
    const bytes = randomBytes(10 * CHUNK + 300)
    const { blob, asked } = testBlob(bytes)
    const { cache } = await openCache({ runChunks: 4 })
    for (const [start, end] of [[0, 0], [5, 2000], [CHUNK - 1, CHUNK], [3000, bytes.length - 1], [0, bytes.length - 1]] as const) {
      expect((await readAll(cache.read(blob, { start, end }))).equals(bytes.subarray(start, end + 1))).toBe(true)
    }
    expect(asked.length).toBeGreaterThan(0)
    for (const range of asked) {
      expect(range.start % CHUNK).toBe(0)
      expect((range.end + 1) % CHUNK === 0 || range.end === bytes.length - 1).toBe(true)
    }
    await cache.close()
  })

  it('makes one source request for N concurrent readers of the same chunk', async () => {
    const bytes = randomBytes(8 * CHUNK)
    const { blob, asked } = testBlob(bytes, { delayMs: 50 })
    const { cache } = await openCache()
    const range = { start: 3 * CHUNK + 10, end: 3 * CHUNK + 500 }
    const reads = await Promise.all(Array.from({ length: 20 }, () => readAll(cache.read(blob, range))))
    for (const got of reads) expect(got.equals(bytes.subarray(range.start, range.end + 1))).toBe(true)
    expect(asked).toEqual([{ start: 3 * CHUNK, end: 4 * CHUNK - 1 }])
    await cache.close()
  })

  it('does not cache a failed fetch: the reader gets the error, the next read fetches again', async () => {
    const bytes = randomBytes(2 * CHUNK)
    const { blob, asked } = testBlob(bytes, { failFirst: 1 })
    const { cache } = await openCache()
    await expect(readAll(cache.read(blob, { start: 0, end: 99 }))).rejects.toThrow('upstream failed')
    expect((await readAll(cache.read(blob, { start: 0, end: 99 }))).equals(bytes.subarray(0, 100))).toBe(true)
    expect(asked).toHaveLength(2)
    await cache.close()
  })

  it('evicts least recently used chunks from memory by size, and then serves them from disk', async () => {
    const bytes = randomBytes(3 * CHUNK)
    const { blob, asked } = testBlob(bytes)
    const { cache, hits } = await openCache({ memoryBytes: 2 * CHUNK })
    await readAll(cache.read(blob, { start: 0, end: bytes.length - 1 }))
    await cache.idle()
    hits.length = 0
    // Chunk 0 was pushed out of memory by chunks 1 and 2; chunk 2 is still there.
    await readAll(cache.read(blob, { start: 2 * CHUNK, end: 2 * CHUNK }))
    await readAll(cache.read(blob, { start: 0, end: 0 }))
    expect(hits).toEqual(['memory', 'disk'])
    expect(asked).toHaveLength(1)
    await cache.close()
  })

  it('fills the rest of a blob in the background after a range read, and marks it verified', async () => {
    const bytes = randomBytes(9 * CHUNK + 1)
    const { blob } = testBlob(bytes)
    const { cache, disk } = await openCache({ fillConcurrency: 1, runChunks: 3 })
    await readAll(cache.read(blob, { start: 5 * CHUNK, end: 5 * CHUNK + 10 }))
    await cache.idle()
    expect(disk.blob(blob.digest)).toMatchObject({ verified: true, size: bytes.length })
    expect(disk.blob(blob.digest)!.present.size).toBe(10)
    expect(await disk.hash(blob.digest)).toBe(blob.digest)
    await cache.close()
  })

  it('drops every chunk of a blob whose whole does not match its digest, and fetches again later', async () => {
    const bytes = randomBytes(3 * CHUNK)
    const bad = testBlob(bytes, { corrupt: true })
    const { cache, disk, invalid, hits } = await openCache({ fillConcurrency: 1 })
    await readAll(cache.read(bad.blob, { start: 0, end: 10 }))
    await cache.idle()
    expect(invalid).toEqual([bad.blob.digest])
    expect(disk.blob(bad.blob.digest)).toBeUndefined()
    // The next reader does not get the dropped chunk from memory either.
    const good = testBlob(bytes)
    hits.length = 0
    expect((await readAll(cache.read(good.blob, { start: 0, end: 10 }))).equals(bytes.subarray(0, 11))).toBe(true)
    expect(hits).toEqual(['miss'])
    await cache.close()
  })
})

describe('DiskChunkStore', () => {
  it('evicts least recently used blobs when over its size bound', async () => {
    const root = await tmpDir('thaw-chunk-disk-')
    const disk = await DiskChunkStore.open(root, { chunkSize: CHUNK, maxBytes: 2 * CHUNK })
    const [a, b, c] = [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(CHUNK)].map((x) => ({ x, d: sha256Of(x) }))
    await disk.write(a!.d, CHUNK, 0, a!.x)
    await disk.write(b!.d, CHUNK, 0, b!.x)
    disk.touch(a!.d) // a used more recently than b
    await disk.write(c!.d, CHUNK, 0, c!.x)
    expect(disk.blob(a!.d)).toBeDefined()
    expect(disk.blob(b!.d)).toBeUndefined()
    expect(disk.blob(c!.d)).toBeDefined()
    expect(disk.bytes).toBe(2 * CHUNK)
  })

  it('reopens with what was durably written: verified state kept, torn chunks and temp files dropped', async () => {
    const root = await tmpDir('thaw-chunk-disk-')
    const first = await DiskChunkStore.open(root, { chunkSize: CHUNK, maxBytes: 1 << 20 })
    const whole = randomBytes(2 * CHUNK)
    const part = randomBytes(3 * CHUNK)
    const [w, p] = [sha256Of(whole), sha256Of(part)]
    await first.write(w, whole.length, 0, whole.subarray(0, CHUNK))
    await first.write(w, whole.length, 1, whole.subarray(CHUNK))
    await first.markVerified(w)
    await first.write(p, part.length, 0, part.subarray(0, CHUNK))
    // What a crash could leave if files were written in place (they are not): a short chunk file,
    // and a temp file.
    await writeFile(join(root, 'blobs', p.slice(7), '1'), part.subarray(CHUNK, CHUNK + 100))
    await writeFile(join(root, 'tmp', 'half-written'), 'x')

    const second = await DiskChunkStore.open(root, { chunkSize: CHUNK, maxBytes: 1 << 20 })
    expect(second.blob(w)).toMatchObject({ verified: true })
    expect([...second.blob(p)!.present]).toEqual([0])
    expect((await second.read(p, 0))!.equals(part.subarray(0, CHUNK))).toBe(true)
    expect(await second.read(p, 1)).toBeUndefined()
    expect(await readdir(join(root, 'tmp'))).toEqual([])
    expect(second.bytes).toBe(3 * CHUNK)
  })
})
