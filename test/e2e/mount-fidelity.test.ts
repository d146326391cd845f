import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage } from '../support/umoci-image.ts'
import { diffSnapshots, snapshotDisk } from '../support/tree-snapshot.ts'

// Small frames so that files of a few hundred KB span several of them.
const FRAMING = { groupBytes: 16 * 1024, splitBytes: 64 * 1024 }

describe.skipIf(fuseUnavailable)('thaw mount: what the mount shows equals umoci unpack', () => {
  let registry: TestRegistry
  beforeAll(async () => {
    registry = await startDistribution()
  })
  afterAll(() => registry?.stop())

  // Seed 2's artifact has only the JSON index, as artifacts converted before the binary index do.
  it.each([
    [1, 'binary'],
    [2, 'JSON only'],
  ])('every path has the same content, type, mode, owner, size, mtime, links, xattrs and listing (seed %i, %s index)', async (seed, kind) => {
    const dir = await tmpDir('thaw-mount-fidelity-')
    const layout = await randomUmociImage(dir, seed, { entries: 200, largeBytes: 200_000 })
    const image = await pushStreamingImage({
      registry: registry.url, repository: `fidelity/s${seed}`, layout, tag: 't', framing: FRAMING, binaryIndex: kind === 'binary',
    })
    expect(image.artifact.binaryIndex !== undefined).toBe(kind === 'binary')
    await runReader('umoci', ['unpack', '--image', `${layout}:t`, join(dir, 'unpacked')])
    const want = snapshotDisk(join(dir, 'unpacked', 'rootfs'))
    const mount = await startMount({ reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'), args: ['--no-background'] })
    const got = snapshotDisk(mount.dir)
    await expect(runReader('touch', [join(mount.dir, 'new-file')])).rejects.toThrow(/Read-only file system/)
    const report = await mount.stop()
    // The rootfs directory and implicit parents are made by umoci at unpack time, not by a layer.
    const inLayers = new Set(image.index.entries.filter((e) => e.mtime !== 0).map((e) => e.path))
    expect(diffSnapshots(want, got, (p) => p === '' || !inLayers.has(p))).toEqual([])
    expect(got.size).toBeGreaterThan(100)
    expect(report.requests).toBeGreaterThan(0)
  })
})
