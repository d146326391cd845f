import { existsSync } from 'node:fs'
import { utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BlobCache } from '../../../host/mount/blob-cache.ts'
import type { CachedBlob } from '../../../host/mount/cached-blob.ts'
import type { Frame } from '../../../runtime/format/frame.ts'
import { sha256Of, type Digest } from '../../../runtime/oci/digest.ts'
import { tmpDir } from '../../support/tmp.ts'

const KiB = 1024
/** Frame i of a blob: 1 KiB decoded, named by the content it stands for. */
const frame = (i: number, at: number, content: string): Frame => ({
  coff: at * 100,
  clen: 100,
  uoff: at * KiB,
  ulen: KiB,
  digest: sha256Of(content),
})
const bytesOf = (content: string) => Buffer.alloc(KiB, content)
const blobDigest = (name: string) => sha256Of(name) as Digest

describe('BlobCache frames by content', () => {
  // Generation 1 of a layer: frames a, b, c. Generation 2 moved c ahead: c', a, b.
  const gen1 = [frame(0, 0, 'a'), frame(1, 1, 'b'), frame(2, 2, 'c')]
  const gen2 = [frame(0, 0, "c'"), frame(1, 1, 'a'), frame(2, 2, 'b')]

  it('copies a frame another blob holds, also after a restart, and forgets the frames of blobs that left', async () => {
    const dir = await tmpDir('thaw-blob-cache-')
    let cache = await BlobCache.open(dir, 1 << 20)
    const old = await cache.acquire(blobDigest('gen1'), gen1)
    await old.store(gen1, ['a', 'b', 'c'].map(bytesOf))
    await cache.release(old)
    await cache.close()

    cache = await BlobCache.open(dir, 1 << 20) // a restarted host: the index comes from <hex>.frames
    const next = await cache.acquire(blobDigest('gen2'), gen2)
    expect(gen2.map((f) => cache.hasCopy(f, next))).toEqual([false, true, true])
    for (const f of gen2.slice(1)) expect(await cache.copyFrame(f, next)).toBe(true)
    const buf = Buffer.alloc(KiB)
    next.readInto(buf, KiB, gen2[1]!.uoff)
    expect(buf).toEqual(bytesOf('a'))
    await next.store([gen2[0]!], [bytesOf("c'")])
    await cache.release(next)

    // Blobs that leave the cache take their frames along: nothing is copied from them any more.
    await cache.clear()
    const third = await cache.acquire(blobDigest('gen3'), [frame(0, 0, 'a')])
    expect(cache.hasCopy(frame(0, 0, 'a'), third)).toBe(false)
    const hex = (name: string) => blobDigest(name).slice('sha256:'.length)
    expect(existsSync(join(dir, 'blobs', `${hex('gen1')}.frames`))).toBe(false)
    await cache.release(third)
    await cache.close()
  })
})

describe('BlobCache eviction order', () => {
  const image = sha256Of('image')
  const other = sha256Of('other image')
  const layer = sha256Of('layer')
  const hex = (name: string) => blobDigest(name).slice('sha256:'.length)
  const onDisk = (dir: string, name: string) =>
    existsSync(join(dir, 'blobs', `${hex(name)}.journal`))

  /** A blob of two 1 KiB frames, stored and released (idle). */
  async function cacheBlob(
    cache: BlobCache,
    name: string,
    lineage: { image: Digest; layer: Digest; generation: number },
  ): Promise<void> {
    const frames = [frame(0, 0, `${name}-0`), frame(1, 1, `${name}-1`)]
    const blob = await cache.acquire(blobDigest(name), frames, lineage)
    await blob.store(frames, [bytesOf(`${name}-0`), bytesOf(`${name}-1`)])
    await cache.release(blob)
  }

  it('evicts an old generation before blobs used less recently, also after a restart', async () => {
    const dir = await tmpDir('thaw-blob-cache-order-')
    let cache = await BlobCache.open(dir, 1 << 20)
    await cacheBlob(cache, 'base', { image: other, layer, generation: 0 }) // least recently used
    await cacheBlob(cache, 'gen0', { image, layer, generation: 0 })
    await cacheBlob(cache, 'gen1', { image, layer, generation: 1 })
    await cache.close()
    // Recency after a restart comes from the journals' mtimes: the old generation was used last
    // (a mount of it ran longest), the other image's blob first. LRU alone would evict 'base'.
    const journal = (name: string) => join(dir, 'blobs', `${hex(name)}.journal`)
    const now = Date.now() / 1000
    await utimes(journal('base'), now - 300, now - 300)
    await utimes(journal('gen1'), now - 200, now - 200)
    await utimes(journal('gen0'), now - 100, now - 100)

    // A restarted host with room for two of the three blobs.
    cache = await BlobCache.open(dir, 4 * KiB)
    await cache.enforceLimit()
    expect(['base', 'gen0', 'gen1'].map((n) => onDisk(dir, n))).toEqual([true, false, true])
    expect(existsSync(join(dir, 'blobs', `${hex('gen0')}.lineage`))).toBe(false)

    // With no old generation left, least recently used goes first.
    await cacheBlob(cache, 'next', { image: other, layer: sha256Of('layer 2'), generation: 0 })
    expect(['base', 'gen1', 'next'].map((n) => onDisk(dir, n))).toEqual([false, true, true])
    await cache.close()
  })
})

describe('BlobCache opens and removals of one blob', () => {
  const framesOf = (name: string) => [frame(0, 0, `${name}0`), frame(1, 1, `${name}1`)]
  /** What `blob` says is present reads back as stored; returns the frames present. */
  function presentFrames(blob: CachedBlob, name: string): number[] {
    return framesOf(name).flatMap((f, i) => {
      if (!blob.has(f)) return []
      const buf = Buffer.alloc(KiB)
      expect(blob.readInto(buf, KiB, f.uoff)).toBe(KiB)
      expect(buf).toEqual(bytesOf(`${name}${i}`))
      return [i]
    })
  }
  /** Blob `name` with its frame 0 stored, released (idle). */
  async function idleBlob(cache: BlobCache, name: string): Promise<void> {
    const blob = await cache.acquire(blobDigest(name), framesOf(name))
    await blob.store([framesOf(name)[0]!], [bytesOf(`${name}0`)])
    await cache.release(blob)
  }
  /** Stores frame 1 in a held blob, releases it, and acquires it again (a later mount). */
  async function storeAndReopen(cache: BlobCache, blob: CachedBlob, name: string) {
    await blob.store([framesOf(name)[1]!], [bytesOf(`${name}1`)])
    await cache.release(blob)
    return cache.acquire(blobDigest(name), framesOf(name))
  }

  it('an acquire while clear() removes that blob never pairs a journal with data it does not describe', async () => {
    const cache = await BlobCache.open(await tmpDir('thaw-blob-cache-race-'), 1 << 20)
    await idleBlob(cache, 'x')
    // The acquire comes while the removal is under way (journal unlinked, data not yet): before
    // the fix it kept the old data file and made a new journal, so the frame it stored next was
    // "present" in the empty data file the next open made (read back as 0 bytes).
    const clearing = cache.clear()
    const blob = await cache.acquire(blobDigest('x'), framesOf('x'))
    await clearing
    const again = await storeAndReopen(cache, blob, 'x')
    expect(presentFrames(again, 'x')).toContain(1) // stored while held: kept, and readable
    await cache.release(again)
    await cache.close()
  })

  it('clear() leaves the files of a blob acquired after it began', async () => {
    const cache = await BlobCache.open(await tmpDir('thaw-blob-cache-race-'), 1 << 20)
    await idleBlob(cache, 'x')
    await idleBlob(cache, 'y')
    const clearing = cache.clear() // removes x first, then y unless it is held by then
    const y = await cache.acquire(blobDigest('y'), framesOf('y'))
    await clearing
    const again = await storeAndReopen(cache, y, 'y')
    expect(presentFrames(again, 'y')).toEqual([0, 1])
    await cache.release(again)
    await cache.close()
  })

  it('a blob acquired again while its release closes it is not idle: clear() leaves it', async () => {
    const cache = await BlobCache.open(await tmpDir('thaw-blob-cache-race-'), 1 << 20)
    const first = await cache.acquire(blobDigest('z'), framesOf('z'))
    await first.store([framesOf('z')[0]!], [bytesOf('z0')])
    const releasing = cache.release(first)
    const held = await cache.acquire(blobDigest('z'), framesOf('z'))
    await releasing
    await cache.clear() // before the fix the release marked it idle, and its files went
    const again = await storeAndReopen(cache, held, 'z')
    expect(presentFrames(again, 'z')).toEqual([0, 1])
    await cache.release(again)
    await cache.close()
  })
})
