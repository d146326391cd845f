/**
 * What `acquire()` costs before a mount can serve, for the cached Debian minbase image pushed as
 * a streaming image to a docker-registry: cold (cache cleared), a second lease while the image is
 * mounted, and a remount after the last release. Medians of `runs`, resolve + mount, in ms.
 *
 *   node --import tsx test/bench/resolve-cost.ts [runs=7]
 *
 * Needs root, /dev/fuse, docker-registry and the Debian layout that test/e2e/mount-debian.test.ts
 * uses (/var/tmp/thaw-cache/debian-bookworm-minbase/layout). Asserts nothing.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createImageMounts } from '../../host/mount/create-image-mounts.ts'
import { startDistribution } from '../support/registry.ts'
import { pushStreamingImage } from '../support/streaming-image.ts'
import { median } from './mount-fixture.ts'

const LAYOUT = '/var/tmp/thaw-cache/debian-bookworm-minbase/layout'
const runs = Number(process.argv[2] ?? 7)
if (!existsSync(LAYOUT)) throw new Error(`no Debian layout at ${LAYOUT}: run test/e2e/mount-debian.test.ts's build first`)

const work = await mkdtemp(join(tmpdir(), 'thaw-bench-resolve-'))
const registry = await startDistribution()
try {
  const image = await pushStreamingImage({
    registry: registry.url, repository: 'debian/minbase', layout: LAYOUT, tag: 'debian',
    framing: { safety: { allowDevices: true } },
  })
  const mounts = await createImageMounts({
    edges: [], cacheDir: join(work, 'cache'), mountRoot: join(work, 'mnt'), cacheBytes: 1 << 30, background: false,
  })
  const ms = { cold: [] as number[], 'second lease': [] as number[], remount: [] as number[] }
  try {
    for (let i = 0; i < runs; i++) {
      await mounts.clearCache()
      const first = await mounts.acquire(image.reference, { replay: false })
      ms.cold.push(first.timings.resolveMs + first.timings.mountMs)
      const t = performance.now()
      const second = await mounts.acquire(image.reference, { replay: false })
      ms['second lease'].push(performance.now() - t)
      await second.release()
      await first.release()
      const again = await mounts.acquire(image.reference, { replay: false })
      ms.remount.push(again.timings.resolveMs + again.timings.mountMs)
      await again.release()
    }
  } finally {
    await mounts.close()
  }
  console.log(`${image.index.entries.length} entries; medians of ${runs} (ms):`)
  for (const [k, v] of Object.entries(ms)) console.log(`  ${k.padEnd(13)} ${median(v).toFixed(1)}   (${v.map((x) => x.toFixed(0)).join(' ')})`)
} finally {
  await registry.stop()
  await rm(work, { recursive: true, force: true })
}
