/**
 * Reads through a lazy mount (`thaw mount`, FUSE) versus the same tree on local disk, in one run:
 * sequential read of a 64 MiB file, 2000 random 4 KiB reads of it, a stat storm (lstat of every
 * path under /data/tree and /usr, as module resolution does), and `node -e 0` started chrooted
 * into the tree. Each cold (mount: empty frame cache, new mount; local: page cache dropped),
 * cached (frame cache full, new mount, so the mount's page cache is cold) and warm (the same
 * mount again, runs interleaved with the local tree's). Then the two ratios, and the
 * requests and bytes a cold `node -e 0` fetched through the mount, without and with a profile.
 *
 *   node --import tsx test/bench/mount.ts [runs=5]
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot. Drops the page cache
 * (/proc/sys/vm/drop_caches) before each cold local measurement. Prints medians of `runs`
 * (mount cold: of min(runs, 3)); asserts nothing.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseProfile } from '../../runtime/profile/profile.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { buildBundle, type PushedStreamingImage } from '../support/streaming-image.ts'
import { benchImage, dropCaches, median, probes, thawMount, type BenchContext } from './mount-fixture.ts'

const runs = Number(process.argv[2] ?? 5)
const coldRuns = Math.min(runs, 3)
const work = await mkdtemp(join(tmpdir(), 'thaw-bench-mount-'))
const cleanups: (() => void)[] = []
const ctx: BenchContext = { work, cleanups }
const mount = (reference: string, cache: string, args?: string[]) => thawMount(ctx, reference, cache, args)

/**
 * A cold `node -e 0` recorded (`--record`), then the same cold start with the bundle built from
 * that profile, served by a proxy in front of the registry: requests and bytes at the proxy.
 */
async function withProfile(reference: string, registry: string, pushed: PushedStreamingImage): Promise<void> {
  const proxy = await startFaultProxy(registry, { closeAfterAll: false })
  try {
    const profilePath = join(work, 'profile.json')
    const start = async (cache: string, args: string[]) => {
      proxy.requests.length = 0
      proxy.bytes = 0
      const m = await mount(reference, cache, ['--edge', proxy.url, ...args])
      // Asynchronously: the proxy serving the mount's requests runs in this process.
      const t = performance.now()
      const child = spawn('chroot', [m.dir, '/usr/bin/node', '-e', '0'], { stdio: 'ignore' })
      const [code] = (await once(child, 'exit')) as [number]
      if (code !== 0) throw new Error(`node in the mount exited with ${code}`)
      const ms = performance.now() - t
      await m.stop()
      const ranges = proxy.requests.filter((r) => r.includes(' bytes=')).length
      const bundles = proxy.requests.filter((r) => r.includes('/_thaw/bundle/')).length
      return `${ms.toFixed(1)} ms, ${ranges} range requests, ${bundles} bundle request(s), ${proxy.bytes} body bytes at the edge`
    }
    const plain = await start(join(work, 'cache-rec'), ['--record', profilePath])
    const profile = parseProfile(readFileSync(profilePath))
    const read = profile.entries.reduce((n, e) => n + e.ranges.reduce((m, [, length]) => m + length, 0), 0)
    proxy.bundle = await buildBundle(pushed, profile.entries.map((e) => e.path))
    const replayed = await start(join(work, 'cache-replay'), [])
    console.log(`profile: ${profile.entries.length} files, ${read} bytes read; bundle ${proxy.bundle.length} bytes`)
    console.log(`cold node -e 0, no profile:   ${plain}`)
    console.log(`cold node -e 0, with profile: ${replayed}`)
  } finally {
    await proxy.close()
  }
}

try {
  const { reference, local, registry, pushed } = await benchImage(ctx)
  const rows: string[][] = [['probe', 'local cold', 'mount cold', 'local warm', 'mount cached', 'mount warm']]
  const ratios: Record<string, { cached: number; warm: number; localCold: number }> = {}
  let nodeFetch: Record<string, number> = {}
  for (const [name, probe] of Object.entries(probes)) {
    const localCold = median(
      Array.from({ length: runs }, () => {
        dropCaches()
        return probe(local)
      }),
    )
    // Cold: each on a new, empty frame cache and a new mount (everything read is fetched).
    const colds: number[] = []
    const cache = join(work, `cache-${rows.length}`)
    for (let i = 0; i < coldRuns; i++) {
      await rm(cache, { recursive: true, force: true })
      const cold = await mount(reference, cache)
      colds.push(probe(cold.dir))
      const report = await cold.stop()
      if (name.startsWith('node')) nodeFetch = report
    }
    // Cached: everything the probe reads is in the frame cache; each run on a new mount, so the
    // kernel's page cache of the mount is cold and every read is a FUSE request.
    const cached: number[] = []
    for (let i = 0; i < runs; i++) {
      const m = await mount(reference, cache)
      cached.push(probe(m.dir))
      await m.stop()
    }
    // Warm: the same mount again, interleaved with the local tree so both see the same machine.
    const warm = await mount(reference, cache)
    probe(warm.dir)
    const localWarm: number[] = []
    const mountWarm: number[] = []
    for (let i = 0; i < runs; i++) {
      localWarm.push(probe(local))
      mountWarm.push(probe(warm.dir))
    }
    await warm.stop()
    const m = [localCold, median(colds), median(localWarm), median(cached), median(mountWarm)]
    ratios[name] = { cached: m[3]! / m[2]!, warm: m[4]! / m[2]!, localCold: m[3]! / m[0]! }
    rows.push([name, ...m.map((x) => x.toFixed(1))])
  }
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(13))).join(''))
  const seq = ratios['sequential 64 MiB (ms)']!
  const start = ratios['node -e 0 chrooted (ms)']!
  console.log(`warm sequential read, mount speed / local speed: ${(1 / seq.warm).toFixed(2)} (target >= 0.5)`)
  console.log(`node -e 0 from a fully cached mount, warm mount / local warm: ${start.warm.toFixed(2)}x (target <= 1.1x)`)
  console.log(`  new mount over the full cache / local warm: ${start.cached.toFixed(2)}x; / local with the page cache dropped: ${start.localCold.toFixed(2)}x`)
  console.log(`cold node -e 0 through the mount fetched (no profile): ${JSON.stringify(nodeFetch)}`)
  await withProfile(reference, registry, pushed)
} finally {
  for (const c of cleanups.reverse()) c()
  await rm(work, { recursive: true, force: true })
}
