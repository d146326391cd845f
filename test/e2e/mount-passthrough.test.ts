import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createImageMounts, type ImageMountsHandle } from '../../host/mount/create-image-mounts.ts'
import { START_READ_AHEAD_KB, type ImageMount } from '../../host/mount/image-mount.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { forceUnmount, runReader } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import {
  buildBundle,
  pushStreamingImage,
  type PushedStreamingImage,
} from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage, umociUnpack } from '../support/umoci-image.ts'

/**
 * FUSE passthrough (Linux 6.9+): a file whose bytes are all local is opened on a whole-file copy
 * and the kernel reads it itself; none of its reads reach thaw. Reads run in child processes:
 * this process serves the mounts.
 */
/** The mount's read-ahead (its bdi, found by device number in mountinfo). */
function readAheadKb(dir: string): number {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === dir)!
  return Number(readFileSync(`/sys/class/bdi/${line.split(' ')[2]}/read_ahead_kb`, 'utf8'))
}
async function until1MiB(dir: string): Promise<void> {
  for (let i = 0; i < 100 && readAheadKb(dir) !== 1024; i++)
    await new Promise((r) => setTimeout(r, 50))
  expect(readAheadKb(dir)).toBe(1024)
}
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const python = (code: string, ...args: string[]) => runReader('python3', ['-c', code, ...args])

describe.skipIf(fuseUnavailable)('mount: passthrough of local files', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  let rootfs: string
  let large: string[]
  let small: string
  let mounts: ImageMountsHandle | undefined
  let dir: string

  beforeAll(async () => {
    registry = await startDistribution()
    dir = await tmpDir('thaw-passthrough-')
    const layout = await randomUmociImage(dir, 7, { entries: 400, largeBytes: 300_000 })
    image = await pushStreamingImage({
      registry: registry.url,
      repository: 'pt/app',
      layout,
      tag: 't',
    })
    rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    const files = image.index.entries.filter((e) => e.type === 'file')
    large = files.filter((e) => e.size >= 300_000).map((e) => e.path)
    small = files.find((e) => e.size > 0 && e.size < 20_000)!.path
    expect(large.length).toBeGreaterThanOrEqual(3)
  })
  afterAll(async () => {
    await mounts?.close()
    for (const m of mounts?.mounted() ?? []) forceUnmount(m.dir)
    await registry?.stop()
  })

  async function mountOnce(bundlePaths: string[] = []) {
    const edge = await startFaultProxy(registry.url)
    if (bundlePaths.length > 0) edge.bundle = await buildBundle(image, bundlePaths)
    mounts = await createImageMounts({
      edges: [edge.url],
      cacheDir: join(dir, 'cache'),
      mountRoot: join(dir, 'mnt'),
      cacheBytes: 1 << 30,
      background: false,
    })
    const lease = await mounts.acquire(image.reference)
    const mount = mounts.mounted()[0]!
    return { lease, mount, edge }
  }
  const hashThrough = async (root: string, path: string) =>
    (await runReader('sha256sum', [join(root, path)])).stdout.split(' ')[0]
  const expected = (path: string) => sha256(readFileSync(join(rootfs, path)))
  const reads = (m: ImageMount) => m.fuseStats.reads

  it('reads a file through FUSE until its frames are local, then passes through: read, mmap and a second open reach thaw with no READ', async () => {
    const { lease, mount } = await mountOnce()
    try {
      const [first] = large
      expect(await hashThrough(lease.root, first!)).toBe(expected(first!)) // fetched: FUSE READs
      expect(reads(mount)).toBeGreaterThan(0)
      const before = { reads: reads(mount), passthrough: mount.fuseStats.passthroughOpens }
      expect(await hashThrough(lease.root, first!)).toBe(expected(first!)) // local now: a copy, passthrough
      const mapped = await python(
        'import mmap,sys,hashlib;f=open(sys.argv[1],"rb");m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ);print(hashlib.sha256(m[:]).hexdigest())',
        join(lease.root, first!),
      )
      expect(mapped.stdout.trim()).toBe(expected(first!))
      expect(reads(mount)).toBe(before.reads)
      expect(mount.fuseStats.passthroughOpens).toBe(before.passthrough + 2)
    } finally {
      await lease.release()
      await mounts?.close()
    }
  })

  it('passes a file delivered by the bundle through on its first open, after a remount finds the copy, and reads a partly fetched file correctly', async () => {
    const [, second, third] = large
    const { lease, mount } = await mountOnce([second!])
    try {
      expect(lease.replayed).toBe(true)
      // A replaying start reads ahead as its recording did until it is over.
      expect(readAheadKb(mount.dir)).toBe(START_READ_AHEAD_KB)
      expect(await hashThrough(lease.root, second!)).toBe(expected(second!))
      expect(mount.fuseStats.passthroughOpens).toBe(1) // the open waited for the bundle, then passed through
      expect(reads(mount)).toBe(0)
      // A file partly fetched: its first bytes only (FUSE), then the whole of it.
      await runReader('head', ['-c', '1000', join(lease.root, third!)])
      expect(await hashThrough(lease.root, third!)).toBe(expected(third!))
      // A small file is read through FUSE (no copy is made for it on open).
      const readsBefore = reads(mount)
      expect(await hashThrough(lease.root, small)).toBe(expected(small))
      expect(reads(mount)).toBeGreaterThan(readsBefore)
      lease.started()
      await until1MiB(mount.dir)
    } finally {
      await lease.release()
      await mounts?.close()
    }
    // A new mount (a new host start) finds the copies: passthrough from the first open.
    const again = await mountOnce()
    try {
      expect(await hashThrough(again.lease.root, second!)).toBe(expected(second!))
      expect(reads(again.mount)).toBe(0)
      expect(again.mount.fuseStats.passthroughOpens).toBe(1)
    } finally {
      await again.lease.release()
    }
  })

  it('does not pass through while a start is recorded, and reads ahead narrowly then: every read reaches the recorder as the process made it', async () => {
    const { mount, lease: made } = await mountOnce()
    // A new mount reads ahead narrowly until the start that made it is over, then 1 MiB.
    expect(readAheadKb(mount.dir)).toBe(START_READ_AHEAD_KB)
    made.started()
    await until1MiB(mount.dir)
    const lease = await mounts!.acquire(image.reference, { record: true })
    expect(readAheadKb(mount.dir)).toBe(START_READ_AHEAD_KB)
    try {
      const [first] = large // local since the first test: passthrough would hide its reads
      expect(await hashThrough(lease.root, first!)).toBe(expected(first!))
      expect(mount.fuseStats.passthroughOpens).toBe(0)
      const profile = lease.started()
      expect(profile?.entries.map((e) => e.path)).toContain(`/${first}`)
      await until1MiB(mount.dir) // raised again in the background once the recording stops
    } finally {
      await lease.release()
      await made.release()
    }
  })

  it('records the page a start touched with the start read-ahead around it, not the 128 KiB the kernel reads around a page fault by default', async () => {
    const { lease: made } = await mountOnce()
    const recording = await mounts!.acquire(image.reference, { record: true })
    const [, , third] = large
    const page = 192 * 1024 // a page fault here reads around it: 64 KiB either side at 128 KiB
    try {
      const touch = await python(
        'import mmap,sys;f=open(sys.argv[1],"rb");m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ);print(m[int(sys.argv[2])])',
        join(recording.root, third!),
        String(page),
      )
      expect(Number(touch.stdout)).toBe(readFileSync(join(rootfs, third!))[page])
      // The file's inode may be recorded under another of its names (the image has hard links).
      const ranges = recording.started()!.entries.flatMap((e) => e.ranges)
      expect(ranges.some(([o, l]) => o <= page && page < o + l)).toBe(true)
      const recorded = ranges.reduce((n, [, length]) => n + length, 0)
      expect(recorded).toBeLessThanOrEqual(START_READ_AHEAD_KB * 1024)
      expect(recorded).toBeLessThan(128 * 1024) // the kernel's default read-around
    } finally {
      await recording.release()
      await made.release()
    }
  })

  it('answers reads of frames in the cache in the FUSE layer itself (direct reads), except while a start is recorded', async () => {
    // `small` was read by an earlier test: its frames are in the cache; each new mount has a
    // page cache of its own, so its reads reach the mount again.
    const { lease, mount } = await mountOnce()
    try {
      const before = mount.fuseStats
      expect(await hashThrough(lease.root, small)).toBe(expected(small))
      const after = mount.fuseStats
      expect(after.directReads).toBeGreaterThan(before.directReads)
      expect(after.reads - after.directReads).toBe(before.reads - before.directReads) // none in JS
    } finally {
      await lease.release()
    }
    const again = await mountOnce()
    const recording = await mounts!.acquire(image.reference, { record: true })
    try {
      const before = again.mount.fuseStats
      expect(await hashThrough(recording.root, small)).toBe(expected(small))
      const after = again.mount.fuseStats
      expect(after.directReads).toBe(before.directReads)
      expect(after.reads).toBeGreaterThan(before.reads)
      expect(recording.started()?.entries.map((e) => e.path)).toContain(`/${small}`)
    } finally {
      await recording.release()
      await again.lease.release()
    }
  })
})
