import { chmod, mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { BenchChild } from '../child.ts'
import { startContainerd, removeEverything, type BenchContainerd } from '../containerd.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import {
  dropCaches,
  listenWorker,
  requestHello,
  WORKER_ARGS,
  WORKER_ENV,
} from '../worker-session.ts'

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
      const runDir = join(ctx.scratchDir, `run-${runs}`)
      const id = `bench-${process.pid}-${runs++}`
      await mkdir(runDir, { recursive: true })
      await chmod(runDir, 0o777)
      await dropCaches()
      const before = await ctx.registry.counters()
      const cpu0 = await ctx.link.proxyCpuMs()
      const t0 = performance.now()
      await c.ctr(['image', 'pull', '--plain-http', ctx.reference], {
        signal,
        timeoutMs: 1_800_000,
      })
      const t1 = performance.now()
      const session = await listenWorker(runDir)
      let run: BenchChild | undefined
      try {
        run = c.spawnCtr(runArgs(ctx, runDir, id))
        const failed = run.exited.then((code) => {
          throw new Error(
            `ctr run exited (${code}) before the answer: ${run?.output().slice(-2000)}`,
          )
        })
        failed.catch(() => {})
        const hello = await Promise.race([session.hello, failed])
        const ready = await Promise.race([session.ready, failed])
        const answer = await requestHello(join(runDir, 'worker.sock'), signal)
        const after = await ctx.registry.counters()
        return {
          ttfbMs: answer.firstByteAt - t0,
          bytesFetched: after.bytes - before.bytes,
          requests: after.requests - before.requests,
          status: answer.status,
          phases: {
            'pull (fetch + unpack)': t1 - t0,
            'ctr run to worker hello': hello - t1,
            'app load to ready': ready - hello,
            'request to first byte': answer.firstByteAt - ready,
          },
          extra: { delayProxyCpuMs: (await ctx.link.proxyCpuMs()) - cpu0 },
        }
      } finally {
        await session.close()
        if (run) {
          await Promise.race([run.exited, new Promise((r) => setTimeout(r, 5000))])
          await run.stop()
        }
        await removeEverything(c.ctr)
        await rm(runDir, { recursive: true, force: true })
      }
    },
    async cleanup() {
      await containerd?.close()
      containerd = undefined
    },
  }
}

function runArgs(ctx: ContenderContext, runDir: string, id: string): string[] {
  const env = Object.entries(WORKER_ENV).flatMap(([k, v]) => ['--env', `${k}=${v}`])
  return [
    'run',
    '--rm',
    '--mount',
    `type=bind,src=${runDir},dst=/.thaw/run,options=rbind:rw`,
    '--mount',
    `type=bind,src=${ctx.workerDir},dst=/.thaw/worker,options=rbind:ro`,
    ...env,
    ctx.reference,
    id,
    ...WORKER_ARGS,
  ]
}
