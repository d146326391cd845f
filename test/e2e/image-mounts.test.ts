import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createImageMounts, type ImageMountsHandle } from '../../host/mount/create-image-mounts.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { forceUnmount, runReader } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { buildBundle, pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage, umociUnpack } from '../support/umoci-image.ts'

// The pool's interface, in the test process: this process serves the mounts, so every read of
// them goes through a child process (a synchronous read here would deadlock).
const mountedAt = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir)
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe.skipIf(fuseUnavailable)('createImageMounts: leases of shared lazy mounts', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  let rootfs: string
  let files: string[]
  let mounts: ImageMountsHandle | undefined
  let mountRoot: string
  let edge: Awaited<ReturnType<typeof startFaultProxy>>
  const indexGets = (requests: string[]) =>
    requests.filter((r) => r.startsWith(`GET /v2/pool/app/blobs/${(image.artifact.binaryIndex ?? image.artifact.index).digest}`)).length

  beforeAll(async () => {
    registry = await startDistribution()
    const dir = await tmpDir('thaw-image-mounts-')
    const layout = await randomUmociImage(dir, 31, { entries: 80, largeBytes: 100_000 })
    image = await pushStreamingImage({ registry: registry.url, repository: 'pool/app', layout, tag: 't' })
    rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    files = image.index.entries.filter((e) => e.type === 'file' && e.size > 0).map((e) => e.path)
    mountRoot = join(dir, 'mounts')
  })
  afterAll(async () => {
    await mounts?.close()
    for (const m of mounts?.mounted() ?? []) forceUnmount(m.dir)
    await registry?.stop()
  })

  async function hashThrough(root: string, path: string): Promise<string> {
    return (await runReader('sha256sum', [join(root, path)])).stdout.split(' ')[0]!
  }

  it('shares one mount between leases, records, and unmounts at the last release', async () => {
    edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, files.slice(0, 3))
    mounts = await createImageMounts({
      edges: [edge.url], cacheDir: join(mountRoot, '..', 'cache'), mountRoot, cacheBytes: 1 << 30, background: false,
    })
    const a = await mounts.acquire(image.reference, { record: true })
    const before = edge.requests.length
    const b = await mounts.acquire(image.reference)
    // Mounted already: the tag is resolved again (it may have moved), nothing more is asked.
    expect(edge.requests.slice(before)).toEqual([`GET /v2/pool/app/manifests/t`])
    expect(b.root).toBe(a.root)
    expect(mountedAt(a.root)).toBe(true)
    expect(a.image.manifest).toBe(image.manifest)
    expect(a.image.artifact).toBe(image.artifact.digest)
    expect(a.image.repository).toBe('pool/app')
    expect(a.replayed).toBe(true)
    expect(b.timings).toEqual({ resolveMs: 0, mountMs: 0, prefetchMs: 0 })
    for (const p of files.slice(0, 4)) {
      expect(await hashThrough(a.root, p)).toBe(sha256(readFileSync(join(rootfs, p))))
    }
    const profile = a.started()
    expect(profile?.subject).toBe(image.manifest)
    expect(profile?.entries.map((e) => e.path.replace(/^\//, ''))).toEqual(files.slice(0, 4))
    expect(b.started()).toBeUndefined()
    // What each lease's cold start fetched (the x-thaw-cold-start header's bytes and requests):
    // range requests of reads the bundle did not cover, and for the lease that mounted, the bundle.
    const last = files[files.length - 1]!
    expect(await hashThrough(b.root, last)).toBe(sha256(readFileSync(join(rootfs, last))))
    await mounts.mounted()[0]!.replay
    const ranges = edge.requests.slice(before).filter((r) => r.startsWith('GET /v2/pool/app/blobs/'))
    expect(b.fetched().requests).toBe(ranges.length)
    expect(a.fetched()).toEqual({
      requests: b.fetched().requests + 1,
      bytes: b.fetched().bytes + edge.bundle!.length,
    })
    await a.release()
    await a.release()
    expect(mountedAt(a.root)).toBe(true)
    await b.release()
    expect(mountedAt(a.root)).toBe(false)
  })

  it('mounts again after the last release, from the cache, without fetching what it holds', async () => {
    const before = edge.requests.length
    const lease = await mounts!.acquire(image.reference, { replay: false })
    const [m] = mounts!.mounted()
    for (const p of files.slice(0, 4)) await hashThrough(lease.root, p)
    expect(m!.loader.stats.requests).toBe(0)
    expect(indexGets(edge.requests.slice(before))).toBe(0) // the parsed index was kept
    await lease.release()
    await mounts!.clearCache()
    const cleared = edge.requests.length
    const again = await mounts!.acquire(image.reference, { replay: false })
    await hashThrough(again.root, files[0]!)
    expect(mounts!.mounted()[0]!.loader.stats.requests).toBeGreaterThan(0)
    const { requests, bytes } = mounts!.mounted()[0]!.loader.stats
    expect(again.fetched()).toEqual({ requests, bytes }) // no bundle: the range requests alone
    expect(indexGets(edge.requests.slice(cleared))).toBe(1)
    await again.release()
    await mounts!.close()
    await mounts!.close()
    await expect(mounts!.acquire(image.reference)).rejects.toMatchObject({ code: 'MOUNT_CLOSED' })
  })

  it('fetches the rest of the image in the background only once the start that mounted it has answered', async () => {
    const dir = join(mountRoot, '..')
    const own = await createImageMounts({
      edges: [edge.url], cacheDir: join(dir, 'cache-bg'), mountRoot: join(dir, 'mounts-bg'), cacheBytes: 1 << 30,
    })
    try {
      const lease = await own.acquire(image.reference, { replay: false })
      const m = own.mounted()[0]!
      await hashThrough(lease.root, files[0]!)
      const read = m.loader.stats.bytes
      const whole = image.index.blobs.reduce((n, b) => n + b.size, 0)
      expect(read).toBeGreaterThan(0)
      expect(read).toBeLessThan(whole) // the start's read, not the image (the background waits)
      // Longer than the pause in reads after which the background fetch begins (2 s): while the
      // start has not answered, nothing but its reads is fetched (it used to begin at the mount).
      await new Promise((r) => setTimeout(r, 3000))
      expect(m.loader.stats.bytes).toBe(read)
      lease.started() // the first response
      expect(await m.background).toEqual({ complete: true })
      expect(m.loader.stats.bytes).toBe(whole)
      await lease.release()
    } finally {
      await own.close()
      for (const x of own.mounted()) forceUnmount(x.dir)
    }
  })
})
