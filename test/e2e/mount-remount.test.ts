import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
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

/**
 * What a host asks for when it mounts an image again: a cold start after scale to zero, a host
 * restarted, a scale-out. It never fetches an index it has, asks for no bundle whose frames it
 * holds, and several nodes starting at once share one bundle. Reads run in child processes.
 */
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe.skipIf(fuseUnavailable)('mounting an image again', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  let rootfs: string
  let profiled: string[]
  let laidOut: string[]
  let dir: string
  const open: ImageMountsHandle[] = []

  beforeAll(async () => {
    registry = await startDistribution()
    dir = await tmpDir('thaw-remount-')
    const layout = await randomUmociImage(dir, 11, { entries: 120, largeBytes: 100_000 })
    rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    // Converted by a profile: its files come first in their blobs, before the prefetch end.
    const files = readdirSync(rootfs, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => join(d.parentPath, d.name).slice(rootfs.length + 1))
      .sort()
    // The profile lays out 8 files first; the bundle brings 6 (a profile's ranges, not all of
    // the region it laid out first, are what a bundle carries).
    profiled = files.slice(0, 6)
    laidOut = files.slice(0, 8)
    image = await pushStreamingImage({ registry: registry.url, repository: 'again/app', layout, tag: 't', framing: { order: laidOut } })
    expect(image.index.blobs.some((b) => b.prefetchEnd > 0)).toBe(true)
  })
  afterAll(async () => {
    for (const m of open) {
      await m.close()
      for (const x of m.mounted()) forceUnmount(x.dir)
    }
    await registry?.stop()
  })

  async function host(edgeUrl: string): Promise<ImageMountsHandle> {
    const m = await createImageMounts({
      edges: [edgeUrl], cacheDir: join(dir, 'cache'), mountRoot: join(dir, `mnt-${open.length}`), cacheBytes: 1 << 30, background: false,
    })
    open.push(m)
    return m
  }
  const indexGets = (requests: string[]) =>
    requests.filter((r) => r.includes(`/blobs/${(image.artifact.binaryIndex ?? image.artifact.index).digest}`)).length
  const bundleGets = (requests: string[]) => requests.filter((r) => r.includes('/_thaw/bundle/')).length
  const rangeGets = (requests: string[]) => requests.filter((r) => r.includes(' bytes=')).length
  async function readProfiled(root: string) {
    for (const p of profiled) {
      const out = await runReader('sha256sum', [join(root, p)])
      expect(out.stdout.split(' ')[0]).toBe(sha256(readFileSync(join(rootfs, p))))
    }
  }

  it('a restarted host mounts from its cache: no index, no bundle and no range request', async () => {
    const edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, profiled)
    const first = await host(edge.url)
    const lease = await first.acquire(image.reference)
    expect(lease.replayed).toBe(true)
    await readProfiled(lease.root)
    expect(await first.mounted()[0]!.replay).toMatchObject({ found: true, rejected: 0 })
    await lease.release()
    await first.close()
    expect(bundleGets(edge.requests)).toBe(1)
    expect(indexGets(edge.requests)).toBe(0) // it came in the bundle, as record 0

    const before = edge.requests.length
    const second = await host(edge.url) // a new process would see the same: nothing in memory
    const again = await second.acquire(image.reference)
    await readProfiled(again.root)
    const asked = edge.requests.slice(before)
    expect(again.replayed).toBe(false)
    expect(bundleGets(asked)).toBe(0)
    expect(indexGets(asked)).toBe(0)
    expect(rangeGets(asked)).toBe(0)
    await again.release()

    // Without its frames (the cache cleared) the bundle is asked for again.
    await second.clearCache()
    const cleared = edge.requests.length
    const third = await second.acquire(image.reference)
    expect(third.replayed).toBe(true)
    await readProfiled(third.root)
    expect(bundleGets(edge.requests.slice(cleared))).toBe(1)
    await third.release()
  })

  it('nodes starting at once share one bundle', async () => {
    const edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, profiled)
    const mounts = await host(edge.url)
    await mounts.clearCache()
    const leases = await Promise.all([1, 2, 3].map(() => mounts.acquire(image.reference)))
    expect(new Set(leases.map((l) => l.root)).size).toBe(1)
    await readProfiled(leases[0]!.root)
    expect(bundleGets(edge.requests)).toBe(1)
    for (const l of leases) await l.release()
  })
})
