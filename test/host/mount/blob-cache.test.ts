import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BlobCache } from '../../../host/mount/blob-cache.ts'
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
