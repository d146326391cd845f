/**
 * What one chrooted `node -e 0` asks of a mount: FUSE requests answered in JS, READs, and
 * passthrough opens, on a new mount over a full frame cache (and file cache), then warm.
 *
 *   node --import tsx test/bench/op-count.ts [--no-passthrough]
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchImage, thawMount, type BenchContext } from './mount-fixture.ts'

const extra = process.argv.slice(2)
const work = await mkdtemp(join(tmpdir(), 'thaw-op-count-'))
const ctx: BenchContext = { work, cleanups: [] }
try {
  const { reference } = await benchImage(ctx)
  const cache = join(work, 'cache')
  for (const label of ['filling the cache', 'new mount, cache full']) {
    const m = await thawMount(ctx, reference, cache, ['--no-replay', ...extra])
    const t0 = performance.now()
    spawnSync('chroot', [m.dir, '/usr/bin/node', '-e', '0'])
    const first = performance.now() - t0
    const t1 = performance.now()
    spawnSync('chroot', [m.dir, '/usr/bin/node', '-e', '0'])
    const again = performance.now() - t1
    const stats = await m.stop()
    console.log(`${label}: first ${first.toFixed(1)} ms, again ${again.toFixed(1)} ms`, stats)
  }
} finally {
  for (const c of ctx.cleanups) c()
  await rm(work, { recursive: true, force: true })
}
