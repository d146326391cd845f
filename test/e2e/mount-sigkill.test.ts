import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JOURNAL_RECORD_BYTES } from '../../host/mount/cached-blob.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { forceUnmount, runReader, startMount } from '../support/mount-process.ts'
import { createRng } from '../support/random-tree.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { diffSnapshots, snapshotDisk } from '../support/tree-snapshot.ts'
import { randomUmociImage, umociUnpack } from '../support/umoci-image.ts'

const FRAMING = { groupBytes: 16 * 1024, splitBytes: 64 * 1024 }

/** Frames named by the journals in the cache directory (not their headers, nor a torn tail record). */
function journaled(cache: string): number {
  let n = 0
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else if (e.name.endsWith('.journal')) n += Math.max(0, Math.floor(statSync(join(d, e.name)).size / JOURNAL_RECORD_BYTES) - 1)
    }
  }
  walk(cache)
  return n
}

describe.skipIf(fuseUnavailable)('thaw mount: SIGKILL while frames are being written', () => {
  let registry: TestRegistry
  beforeAll(async () => {
    registry = await startDistribution()
  })
  afterAll(() => registry?.stop())

  it('leaves a cache that a restarted mount trusts only for what was written, and reads correctly', async () => {
    const dir = await tmpDir('thaw-mount-sigkill-')
    const layout = await randomUmociImage(dir, 23, { entries: 400, largeBytes: 300_000 })
    const image = await pushStreamingImage({ registry: registry.url, repository: 'kill/app', layout, tag: 't', framing: FRAMING })
    const rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    const total = image.index.blobs.reduce((n, b) => n + b.frames.length, 0)
    const files = image.index.entries.filter((e) => e.type === 'file' && e.size > 0).map((e) => e.path)
    const edge = await startFaultProxy(registry.url)
    // Every range answer is held back a little, so frames arrive over time while reads and the
    // background fetch run; the kill lands at a seeded random moment among them.
    edge.mode = 'slow'
    edge.delayMs = 20
    const cache = join(dir, 'cache')
    const mnt = join(dir, 'mnt')
    const rng = createRng(5)
    const partial: number[] = []
    for (let round = 0; round < 4; round++) {
      const m = await startMount({ reference: image.reference, dir: mnt, cache, edges: [edge.url] })
      const readers = runReader('cat', files.slice(round * 40, round * 40 + 40).map((p) => join(mnt, p))).catch(() => {})
      // Kill once this round has journaled something new (so frames are arriving), after a
      // further seeded random moment.
      const start = journaled(cache)
      for (let i = 0; i < 600 && journaled(cache) === start; i++) await new Promise((r) => setTimeout(r, 5))
      await new Promise((r) => setTimeout(r, rng.int(0, 60)))
      await m.process.kill()
      forceUnmount(mnt)
      await readers
      const present = journaled(cache)
      if (present > 0 && present < total) partial.push(present)
    }
    // The kills must have landed mid-way at least once, or this test tested nothing.
    expect(partial.length).toBeGreaterThan(0)

    edge.mode = 'pass'
    const before = journaled(cache)
    const m = await startMount({ reference: image.reference, dir: mnt, cache, edges: [edge.url] })
    await m.process.waitFor(/^background fetch complete$/m, 60_000)
    // Everything is now local: with the edge (the only source that answers ranges) gone, the
    // whole tree still reads, and equals umoci's unpack.
    edge.mode = 'down'
    const got = snapshotDisk(mnt)
    const report = await m.stop()
    const inLayers = new Set(image.index.entries.filter((e) => e.mtime !== 0).map((e) => e.path))
    expect(diffSnapshots(snapshotDisk(rootfs), got, (p) => p === '' || !inLayers.has(p))).toEqual([])
    // What survived the kills was used, not fetched again.
    expect(report.frames).toBeLessThanOrEqual(total - before)
    expect(journaled(cache)).toBe(total)
  })
})
