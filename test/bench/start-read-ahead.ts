/**
 * What the kernel's read-ahead during a recorded start does to the profile, and so to the bundle:
 * a chrooted node start recorded through `thaw mount --record --start-read-ahead KB` for each KB,
 * on a frame cache filled beforehand (every read still reaches thaw: recording turns direct reads
 * off, and each new mount has an empty page cache). Reported per KB: the profile's bytes and
 * ranges; its hot bytes as a re-layout would place them (runtime/format contentSegments, at the
 * default and at 16 KiB minColdBytes) and those bytes compressed as hot frames (zstd at the
 * edge's profiled level, one frame per hot stretch of at most 1 MiB: an estimate of the bundle);
 * the FUSE reads the start made; and its time (loaded machine: a hint only).
 *
 *   node --import tsx test/bench/start-read-ahead.ts [KB ...]   (default 128 64 32 16 8 4)
 *
 * Needs root, /dev/fuse, umoci, docker-registry, chroot (mount-fixture.ts). Asserts nothing.
 */
import { spawnSync } from 'node:child_process'
import { lstatSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_PROFILED_LEVEL } from '../../registry-edge/convert/converter.ts'
import { createCodec } from '../../runtime/format/codec/codec.ts'
import { contentSegments } from '../../runtime/format/layer-order.ts'
import { DEFAULT_MIN_COLD_BYTES } from '../../runtime/format/layer-writer.ts'
import { parseProfile, type Profile } from '../../runtime/profile/profile.ts'
import { benchImage, median, thawMount, type BenchContext } from './mount-fixture.ts'

const values = process.argv.slice(2).map(Number)
const kbs = values.length > 0 ? values : [128, 64, 32, 16, 8, 4]
const ROUNDS = 2
// A node start that loads more than `node -e 0`: modules from the binary, a hash, a server.
const PROBE = `const h=require('http');require('https');require('zlib').gzipSync('x');
require('crypto').createHash('sha256').update('x').digest('hex');
const s=h.createServer(()=>{}).listen(0,()=>s.close())`
const work = await mkdtemp(join(tmpdir(), 'thaw-bench-start-ra-'))
const ctx: BenchContext = { work, cleanups: [] }
const codec = createCodec('zstd', DEFAULT_PROFILED_LEVEL)
const MB = 1e6

function start(root: string): number {
  const t = performance.now()
  const r = spawnSync('chroot', [root, '/usr/bin/node', '-e', PROBE], { stdio: 'ignore' })
  if (r.status !== 0) throw new Error(`node in the mount exited with ${r.status}`)
  return performance.now() - t
}

/** The profiled files' hot stretches (as re-layout places them), raw and compressed. */
function hot(profile: Profile, local: string, minCold: number): { raw: number; packed: number } {
  let raw = 0
  let packed = 0
  for (const e of profile.entries) {
    let content: Buffer
    try {
      if (!lstatSync(join(local, e.path)).isFile()) continue
      content = readFileSync(join(local, e.path))
    } catch {
      continue
    }
    for (const s of contentSegments(content.length, e.ranges, minCold)) {
      if (!s.hot) continue
      raw += s.end - s.start
      for (let at = s.start; at < s.end; at += 1 << 20)
        packed += codec.encode(content.subarray(at, Math.min(s.end, at + (1 << 20)))).length
    }
  }
  return { raw, packed }
}

try {
  const { reference, local } = await benchImage(ctx)
  const cache = join(work, 'cache')
  const fill = await thawMount(ctx, reference, cache, ['--no-replay'])
  start(fill.dir)
  await fill.stop()
  const rows = new Map<number, { ms: number[]; reads: number[]; profile?: Profile }>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const kb of round % 2 ? [...kbs].reverse() : kbs) {
      const file = join(work, `profile-${kb}-${round}.json`)
      const m = await thawMount(ctx, reference, cache, [
        '--no-replay',
        '--record',
        file,
        '--start-read-ahead',
        String(kb),
      ])
      const ms = start(m.dir)
      const report = await m.stop()
      const row = rows.get(kb) ?? { ms: [], reads: [] }
      row.ms.push(ms)
      row.reads.push(report.fuseReads ?? NaN)
      row.profile ??= parseProfile(readFileSync(file))
      rows.set(kb, row)
    }
  }
  console.log(`load ${readFileSync('/proc/loadavg', 'utf8').trim()}`)
  console.log(
    'read-ahead KiB | profile MB | ranges | hot MB (64 KiB / 16 KiB min cold) | hot packed MB (64 / 16) | FUSE reads | start ms (median)',
  )
  for (const [kb, row] of rows) {
    const p = row.profile!
    const bytes = p.entries.reduce((n, e) => n + e.ranges.reduce((m, [, l]) => m + l, 0), 0)
    const ranges = p.entries.reduce((n, e) => n + e.ranges.length, 0)
    const wide = hot(p, local, DEFAULT_MIN_COLD_BYTES)
    const narrow = hot(p, local, 16 * 1024)
    console.log(
      [
        kb,
        (bytes / MB).toFixed(2),
        ranges,
        `${(wide.raw / MB).toFixed(2)} / ${(narrow.raw / MB).toFixed(2)}`,
        `${(wide.packed / MB).toFixed(2)} / ${(narrow.packed / MB).toFixed(2)}`,
        median(row.reads),
        median(row.ms).toFixed(0),
      ].join(' | '),
    )
  }
} finally {
  for (const c of ctx.cleanups.reverse()) c()
  await rm(work, { recursive: true, force: true })
}
