import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { CachedBlob } from '../../../host/mount/cached-blob.ts'
import { FrameLoader } from '../../../host/mount/frame-loader.ts'
import { SourceSet } from '../../../host/mount/source-set.ts'
import { createCodec } from '../../../runtime/format/codec/codec.ts'
import type { Frame } from '../../../runtime/format/frame.ts'
import type { FsIndex } from '../../../runtime/format/fs-index.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { tmpDir } from '../../support/tmp.ts'

const frame = (i: number): Frame => ({ coff: i * 100, clen: 100, uoff: i * 1000, ulen: 1000, digest: sha256Of(`f${i}`) })

const opened: CachedBlob[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()))
})

/** A loader over one blob of two frames, the first of them in the cache; no source answers. */
async function loaderWithFirstFrame(): Promise<FrameLoader> {
  const dir = await tmpDir('thaw-frame-loader-')
  const blob = await CachedBlob.open('ab', join(dir, 'ab.data'), join(dir, 'ab.journal'))
  opened.push(blob)
  await blob.store([frame(0)], [Buffer.alloc(1000, 1)])
  const index: FsIndex = {
    version: 1,
    codec: 'zstd',
    blobs: [{ digest: sha256Of('blob'), size: 200, tarSize: 2000, diffId: sha256Of('tar'), prefetchEnd: 0, frames: [frame(0), frame(1)] }],
    entries: [],
  }
  return new FrameLoader({
    index,
    codec: createCodec('zstd'),
    repository: 'apps/test',
    sources: new SourceSet({ urls: ['http://127.0.0.1:9'] }),
    blobs: [blob],
  })
}

describe('FrameLoader', () => {
  it('answers whether a read can be served from the cache now', async () => {
    const loader = await loaderWithFirstFrame()
    expect(loader.readableNow(0, 0, 0)).toBe(true)
    expect(loader.readableNow(0, 0, 1)).toBe(false)
    expect(loader.readableNow(0, 1, 1)).toBe(false)
  })

  // Background fetch waits for quiet(): a process reading only cached frames is still starting.
  it('keeps quiet() waiting after a read that the cache answered', async () => {
    const loader = await loaderWithFirstFrame()
    const abort = new AbortController()
    let quiet = false
    const waiting = loader.quiet(60_000, abort.signal).then(
      () => (quiet = true),
      () => {},
    )
    await sleep(20)
    expect(quiet).toBe(true) // nothing was read yet

    quiet = false
    loader.readableNow(0, 0, 0)
    const again = loader.quiet(60_000, abort.signal).then(
      () => (quiet = true),
      () => {},
    )
    await sleep(50)
    expect(quiet).toBe(false)
    abort.abort()
    await Promise.all([waiting, again])
  })
})
