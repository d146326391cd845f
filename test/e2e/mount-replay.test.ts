import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseProfile } from '../../runtime/profile/profile.ts'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { buildBundle, pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage, umociUnpack } from '../support/umoci-image.ts'

const FRAMING = { groupBytes: 16 * 1024, splitBytes: 64 * 1024 }
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const ranges = (p: FaultProxy) => p.requests.filter((r) => r.includes(' bytes=')).length
const bundles = (p: FaultProxy) => p.requests.filter((r) => r.includes('/_thaw/bundle/')).length
/** What the mount asked of the edge, without the host's health probes of it (`GET /v2/`). */
const asked = (p: FaultProxy) => p.requests.filter((r) => r !== 'GET /v2/')

describe.skipIf(fuseUnavailable)('thaw mount: record a profile, then replay its bundle', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  let rootfs: string
  let profiled: string[]
  let missed: string

  beforeAll(async () => {
    registry = await startDistribution()
    const dir = await tmpDir('thaw-mount-replay-')
    const layout = await randomUmociImage(dir, 11, { entries: 300, largeBytes: 200_000 })
    image = await pushStreamingImage({ registry: registry.url, repository: 'replay/app', layout, tag: 't', framing: FRAMING })
    rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    // Files by the frames that hold them: the profile takes some, `missed` shares no frame with them.
    const files = image.index.entries.filter((e) => e.type === 'file' && e.size > 0)
    const framesOf = (e: (typeof files)[number]) => {
      const frames = image.index.blobs[e.blob]!.frames
      return frames
        .map((f, i) => ({ f, i }))
        .filter(({ f }) => f.uoff < e.offset + e.size && e.offset < f.uoff + f.ulen)
        .map(({ i }) => `${e.blob}:${i}`)
    }
    profiled = files.slice(0, 12).map((e) => e.path)
    const taken = new Set(files.slice(0, 12).flatMap(framesOf))
    const rest = files.slice(12).find((e) => framesOf(e).every((k) => !taken.has(k)))
    expect(rest).toBeDefined()
    missed = rest!.path
  })
  afterAll(() => registry?.stop())

  async function readAll(root: string, paths: string[]): Promise<void> {
    const { stdout } = await runReader('sha256sum', paths.map((p) => join(root, p)))
    const got = stdout.trim().split('\n').map((l) => l.split(' ')[0])
    expect(got).toEqual(paths.map((p) => sha256(readFileSync(join(rootfs, p)))))
  }

  it('records the files read in order, with their ranges', async () => {
    const dir = await tmpDir('thaw-mount-record-')
    const edge = await startFaultProxy(registry.url)
    const out = join(dir, 'profile.json')
    const m = await startMount({
      reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'),
      edges: [edge.url], args: ['--no-background', '--record', out],
    })
    for (const p of profiled.slice(0, 5)) await readAll(m.dir, [p])
    await m.stop()
    const profile = parseProfile(await readFile(out))
    expect(profile.subject).toBe(image.manifest)
    expect(profile.entries.map((e) => e.path.replace(/^\//, ''))).toEqual(profiled.slice(0, 5))
    for (const e of profile.entries) expect(e.ranges.length).toBeGreaterThan(0)
  })

  it('fetches one bundle, then range-requests only what the profile missed', async () => {
    const dir = await tmpDir('thaw-mount-replay-m-')
    const edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, profiled)
    const m = await startMount({
      reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'),
      edges: [edge.url], args: ['--no-background'],
    })
    try {
      // One request once the manifest digest is known: the bundle, whose header carries the
      // artifact manifest, its config and the image config, and whose record 0 is the index.
      expect(asked(edge)).toEqual([
        'GET /v2/replay/app/manifests/t',
        `GET /v2/replay/app/_thaw/bundle/${image.manifest}`,
      ])
      await readAll(m.dir, profiled)
      expect(bundles(edge)).toBe(1)
      expect(edge.requests.filter((r) => r.includes(' bytes='))).toEqual([])
      await readAll(m.dir, [missed])
      expect(ranges(edge)).toBeGreaterThan(0)
      expect(bundles(edge)).toBe(1)
    } finally {
      const report = await m.stop()
      expect(report.rejected).toBe(0)
    }
  })

  it('with a bundle from an edge that sends no start, resolves by requests and asks for the bundle first', async () => {
    const dir = await tmpDir('thaw-mount-replay-o-')
    const edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, profiled, { start: false })
    const m = await startMount({
      reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'),
      edges: [edge.url], args: ['--no-background'],
    })
    try {
      const bundleAt = asked(edge).findIndex((r) => r.includes('/_thaw/bundle/'))
      const indexAt = asked(edge).findIndex((r) => r.includes((image.artifact.binaryIndex ?? image.artifact.index).digest))
      expect(bundleAt).toBe(1)
      expect(indexAt).toBeGreaterThan(bundleAt)
      await readAll(m.dir, profiled)
      expect(edge.requests.filter((r) => r.includes(' bytes='))).toEqual([])
    } finally {
      expect((await m.stop()).rejected).toBe(0)
    }
  })

  it("does not trust a bundle's start that does not match the digests it is checked against: the image resolves by requests", async () => {
    const dir = await tmpDir('thaw-mount-replay-t-')
    const edge = await startFaultProxy(registry.url)
    edge.bundle = await buildBundle(image, profiled, { start: 'tampered' })
    const m = await startMount({
      reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'),
      edges: [edge.url], args: ['--no-background'],
    })
    try {
      expect(edge.requests.some((r) => r.includes('/referrers/'))).toBe(true)
      await readAll(m.dir, profiled)
      expect(m.process.output()).toMatch(/the bundle's start was not used: .*image config/)
    } finally {
      expect((await m.stop()).rejected).toBe(0)
    }
  })

  it('without a bundle, the same reads are range requests', async () => {
    const dir = await tmpDir('thaw-mount-replay-n-')
    const edge = await startFaultProxy(registry.url)
    const m = await startMount({
      reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'),
      edges: [edge.url], args: ['--no-background'],
    })
    await readAll(m.dir, profiled)
    await m.stop()
    expect(bundles(edge)).toBe(1)
    expect(ranges(edge)).toBeGreaterThan(0)
  })
})
