import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startFaultProxy, type FaultMode, type FaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount, type MountProcess } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage, umociUnpack } from '../support/umoci-image.ts'

// Faults injected on the wire by proxies: `edge` is the preferred source, `origin` stands in front
// of the registry named by the reference (the last source). Reads go through child processes.
const FRAMING = { groupBytes: 16 * 1024, splitBytes: 64 * 1024 }

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const ranges = (p: FaultProxy) => p.requests.filter((r) => r.includes(' bytes=')).length

describe.skipIf(fuseUnavailable)('thaw mount: faults between the host and its sources', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  let rootfs: string
  let large: string[]
  let edge: FaultProxy
  let origin: FaultProxy
  let mount: MountProcess | undefined

  beforeAll(async () => {
    registry = await startDistribution()
    const dir = await tmpDir('thaw-mount-faults-')
    const layout = await randomUmociImage(dir, 7, { entries: 300, largeBytes: 300_000 })
    image = await pushStreamingImage({ registry: registry.url, repository: 'faults/app', layout, tag: 't', framing: FRAMING })
    rootfs = await umociUnpack(layout, 't', join(dir, 'unpacked'))
    // The largest files (the first ones span several frames), each read once by one test (a fresh cache each time).
    const seen = new Set<string>()
    large = image.index.entries
      .filter((e) => e.type === 'file' && e.size > 1000)
      .sort((a, b) => b.size - a.size)
      .filter((e) => !seen.has(`${e.blob}:${e.offset}`) && seen.add(`${e.blob}:${e.offset}`))
      .map((e) => e.path)
    expect(large.length).toBeGreaterThanOrEqual(6)
  })
  afterAll(() => registry?.stop())

  /** A fresh mount (empty cache) with every request through the two proxies, all in 'pass'. */
  async function mountThroughProxies(args: string[] = []): Promise<MountProcess> {
    edge = await startFaultProxy(registry.url)
    origin = await startFaultProxy(registry.url)
    const dir = await tmpDir('thaw-mount-faults-m-')
    const reference = image.reference.replace(new URL(registry.url).host, origin.address)
    mount = await startMount({
      reference,
      dir: join(dir, 'mnt'),
      cache: join(dir, 'cache'),
      edges: [edge.url],
      args: ['--no-background', '--no-replay', '--timeout', '1000', '--retry-after', '60000', ...args],
    })
    return mount
  }

  afterEach(async () => {
    await mount?.stop().catch(() => {})
    mount = undefined
    await edge?.close()
    await origin?.close()
  })

  /** sha256 of the file read through the mount by `sha256sum` (a child process). */
  async function readThrough(m: MountProcess, path: string): Promise<string> {
    const { stdout } = await runReader('sha256sum', [join(m.dir, path)])
    return stdout.split(' ')[0]!
  }
  const want = (path: string) => sha256(readFileSync(join(rootfs, path)))

  it.each<[FaultMode, number]>([
    // the edge dies halfway through a range answer and stays dead: the origin completes the read
    ['kill', 0],
    // one bit flipped in every range answer: the frame digest rejects it, the origin refetches
    ['flip', 1],
    // range answers cut halfway (fewer bytes than promised): detected, refetched from the origin
    ['truncate', 2],
    // the edge accepts requests and never answers: the deadline (1 s) moves on to the origin
    ['blackhole', 3],
  ])('a read completes with the right bytes when the edge is in mode %s', async (mode, i) => {
    const m = await mountThroughProxies()
    edge.mode = mode
    const path = large[i]!
    expect(await readThrough(m, path)).toBe(want(path))
    expect(edge.requests.length).toBeGreaterThan(0)
    if (mode !== 'blackhole') expect(ranges(edge)).toBeGreaterThan(0)
    expect(ranges(origin)).toBeGreaterThan(0)
  })

  it('answers EIO without hanging when every source is gone, and reads again once one returns', async () => {
    const m = await mountThroughProxies()
    edge.mode = 'down'
    origin.mode = 'down'
    const path = large[4]!
    await expect(readThrough(m, path)).rejects.toThrow(/Input\/output error/)
    origin.mode = 'pass'
    expect(await readThrough(m, path)).toBe(want(path))
    // what was listed before the failure still lists (metadata is answered from memory)
    const { stdout } = await runReader('ls', ['-a', m.dir])
    expect(stdout.split('\n').filter(Boolean).length).toBeGreaterThan(2)
  })

  it('prefers the edge: with no fault the origin serves no range request', async () => {
    const m = await mountThroughProxies()
    const path = large[5]!
    expect(await readThrough(m, path)).toBe(want(path))
    expect(ranges(edge)).toBeGreaterThan(0)
    expect(ranges(origin)).toBe(0)
  })
})
