import { join } from 'node:path'
import { startContainerd, removeEverything, type BenchContainerd } from '../containerd.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { ctrRunSample, ctrRunWorker } from '../ctr-run-worker.ts'
import { dropCaches } from '../worker-session.ts'

/**
 * Contender 1: what a host without lazy loading does. The image is removed (content and
 * snapshots garbage-collected), the page cache dropped, then `ctr image pull` (fetch every layer,
 * gunzip and unpack into overlayfs snapshots) and `ctr run` (overlayfs + runc) of the worker with
 * the app; t0 is the start of the pull, the end the first byte of the function's answer.
 */
export function fullPullContender(): Contender {
  let containerd: BenchContainerd | undefined
  let ctx: ContenderContext | undefined
  let runs = 0
  return {
    id: 'full-pull',
    label: 'containerd full pull + unpack + run',
    description:
      'containerd 1.6: ctr image pull (fetch + gunzip + unpack to overlayfs snapshots) then ctr run (overlayfs, runc); image removed and page cache dropped before each start',
    offline: false,
    appliesTo: () => true,
    async prepare(context) {
      ctx = context
      containerd = await startContainerd(join(context.scratchDir, 'containerd'), context.link)
    },
    async coldStart(signal): Promise<ColdStartSample> {
      if (!containerd || !ctx) throw new Error('prepare first')
      const c = containerd
      await removeEverything(c.ctr)
      const run = runs++
      await dropCaches()
      const before = await ctx.registry.counters()
      const cpu0 = await ctx.link.proxyCpuMs()
      try {
        const t0 = performance.now()
        await c.ctr(['image', 'pull', '--plain-http', ctx.reference], {
          signal,
          timeoutMs: 1_800_000,
        })
        const t1 = performance.now()
        const times = await ctrRunWorker(c, {
          reference: ctx.reference,
          workerDir: ctx.workerDir,
          runDir: join(ctx.scratchDir, `run-${run}`),
          id: `bench-${process.pid}-${run}`,
          signal,
        })
        const after = await ctx.registry.counters()
        return ctrRunSample({
          t0,
          t1,
          pullPhase: 'pull (fetch + unpack)',
          times,
          before,
          after,
          extra: { delayProxyCpuMs: (await ctx.link.proxyCpuMs()) - cpu0 },
        })
      } finally {
        await removeEverything(c.ctr)
      }
    },
    async cleanup() {
      await containerd?.close()
      containerd = undefined
    },
  }
}
