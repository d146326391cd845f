/**
 * The same reads through `thaw mount` of two checkouts (e.g. main before and after a change),
 * interleaved run by run (A B, then B A) so that the load of this shared machine falls on both
 * alike: sequential 64 MiB and chrooted `node -e 0` (mount.ts's decode-heavy probes), each cold
 * (empty frame cache, new mount) and cached (frame cache full, new mount, no decoding).
 *
 *   node --import tsx test/bench/mount-ab.ts DIR_A DIR_B [runs=7]
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot. Prints medians and each run; asserts
 * nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { benchImage, median, probes, thawMount, type BenchContext } from './mount-fixture.ts'

const [dirA, dirB] = process.argv.slice(2, 4)
if (!dirA || !dirB) throw new Error('usage: mount-ab.ts DIR_A DIR_B [runs]')
const runs = Number(process.argv[4] ?? 7)
const bins = { A: join(resolve(dirA), 'bin', 'thaw'), B: join(resolve(dirB), 'bin', 'thaw') }
const work = await mkdtemp(join(tmpdir(), 'thaw-bench-ab-'))
const ctx: BenchContext = { work, cleanups: [] }
const chosen = ['sequential 64 MiB (ms)', 'node -e 0 chrooted (ms)']

async function measure(bin: string, reference: string, cache: string, probe: (r: string) => number) {
  const m = await thawMount(ctx, reference, cache, ['--no-replay'], bin)
  try {
    return probe(m.dir)
  } finally {
    await m.stop()
  }
}

try {
  const { reference } = await benchImage(ctx)
  console.log(`A = ${dirA}\nB = ${dirB}\nmedians of ${runs} runs (ms):`)
  console.log(['probe', 'condition', 'A', 'B', 'B/A'].map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(10))).join(''))
  for (const name of chosen) {
    const probe = probes[name]!
    const full = { A: join(work, 'full-A'), B: join(work, 'full-B') }
    for (const k of ['A', 'B'] as const) await measure(bins[k], reference, full[k], probe)
    for (const condition of ['cold', 'cached'] as const) {
      const ms = { A: [] as number[], B: [] as number[] }
      for (let i = 0; i < runs; i++) {
        for (const k of i % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
          const cache = condition === 'cached' ? full[k] : join(work, `cold-${k}-${i}`)
          ms[k].push(await measure(bins[k], reference, cache, probe))
          if (condition === 'cold') await rm(cache, { recursive: true, force: true })
        }
      }
      const [a, b] = [median(ms.A), median(ms.B)]
      console.log([name, condition, a.toFixed(1), b.toFixed(1), (b / a).toFixed(2)].map((c, i) => (i === 0 ? c.padEnd(26) : c.padStart(10))).join(''))
      console.log(`  runs A: ${ms.A.map((x) => x.toFixed(0)).join(' ')}  B: ${ms.B.map((x) => x.toFixed(0)).join(' ')}`)
    }
  }
} finally {
  for (const c of ctx.cleanups.reverse()) c()
  await rm(work, { recursive: true, force: true })
}
