/**
 * What recording costs (issue 4: "recording costs little enough that the host can record the
 * first few cold starts of every new image in production"): the workload of mount.ts (sequential
 * 64 MiB, 2000 random 4 KiB reads, stat storm, chrooted `node -e 0`) through `thaw mount` with
 * an AccessRecorder attached (`--record FILE`, as create-image-mounts.ts attaches it through
 * `mount.fs.observers`) and without, in two conditions:
 *   cold    empty frame cache, new mount (fetch + verify + decode dominate)
 *   cached  frame cache full, new mount, so every read still reaches the filesystem (the
 *           kernel's page cache of a new FUSE mount is empty): the most sensitive case
 * With and without alternate within each run (which goes first alternates too). Also the
 * recorder alone, in this process: nanoseconds per open()/read() call.
 *
 *   node --import tsx test/bench/record-cost.ts [runs=5]
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot. Prints medians of `runs` and the ratio
 * with/without; asserts nothing.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AccessRecorder } from '../../host/profile/access-recorder.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { parseProfile } from '../../runtime/profile/profile.ts'
import { benchImage, median, probes, thawMount, type BenchContext } from './mount-fixture.ts'

const runs = Number(process.argv[2] ?? 5)
const work = await mkdtemp(join(tmpdir(), 'thaw-bench-record-'))
const ctx: BenchContext = { work, cleanups: [] }
const SUBJECT = `sha256:${'0'.repeat(64)}` as Digest


/** The recorder alone: 2000 files opened, then 1e6 reads of 128 KiB spread over them. */
function recorderAlone(): { openNs: number; readNs: number } {
  const recorder = new AccessRecorder({ subject: SUBJECT, limitMs: 3_600_000 })
  const paths = Array.from({ length: 2000 }, (_, i) => `/usr/lib/node_modules/pkg${i % 97}/file${i}.js`)
  let t = performance.now()
  for (const p of paths) recorder.open(p)
  const openNs = ((performance.now() - t) * 1e6) / paths.length
  const n = 1_000_000
  t = performance.now()
  for (let i = 0; i < n; i++) recorder.read(paths[i % paths.length]!, (i >> 11) * 131072, 131072)
  const readNs = ((performance.now() - t) * 1e6) / n
  recorder.stop()
  return { openNs, readNs }
}

type Mode = 'without' | 'with'

/** One probe through a new mount of `cache`; with `--record` when mode is 'with'. */
async function once(reference: string, cache: string, probe: (root: string) => number, mode: Mode) {
  const profile = join(work, `profile-${Math.random().toString(36).slice(2)}.json`)
  const m = await thawMount(ctx, reference, cache, ['--no-replay', ...(mode === 'with' ? ['--record', profile] : [])])
  let ms: number
  try {
    ms = probe(m.dir)
  } finally {
    await m.stop()
  }
  const entries = mode === 'with' ? parseProfile(readFileSync(profile)).entries.length : 0
  return { ms, entries }
}

try {
  const alone = recorderAlone()
  console.log(`recorder alone: open ${alone.openNs.toFixed(0)} ns/call, read ${alone.readNs.toFixed(0)} ns/call`)
  const { reference } = await benchImage(ctx)
  const rows = [['probe', 'condition', 'without', 'with', 'with/without', 'profile entries']]
  for (const [name, probe] of Object.entries(probes)) {
    const cached = join(work, 'cache-full')
    await once(reference, cached, probe, 'without') // fills the frame cache for this probe
    for (const condition of ['cold', 'cached'] as const) {
      const ms: Record<Mode, number[]> = { without: [], with: [] }
      let entries = 0
      for (let i = 0; i < runs; i++) {
        const order: Mode[] = i % 2 === 0 ? ['without', 'with'] : ['with', 'without']
        for (const mode of order) {
          const cache = condition === 'cached' ? cached : join(work, `cache-cold-${i}-${mode}`)
          const r = await once(reference, cache, probe, mode)
          ms[mode].push(r.ms)
          if (mode === 'with') entries = r.entries
          if (condition === 'cold') await rm(cache, { recursive: true, force: true })
        }
      }
      const [a, b] = [median(ms.without), median(ms.with)]
      rows.push([name, condition, a.toFixed(1), b.toFixed(1), (b / a).toFixed(3), String(entries)])
      console.error(`${name} ${condition}: without ${ms.without.map((x) => x.toFixed(1)).join(' ')}; with ${ms.with.map((x) => x.toFixed(1)).join(' ')}`)
    }
    await rm(cached, { recursive: true, force: true })
  }
  console.log(`medians of ${runs} runs (ms):`)
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(i === 1 ? 9 : 14))).join(''))
} finally {
  for (const c of ctx.cleanups.reverse()) c()
  await rm(work, { recursive: true, force: true })
}
