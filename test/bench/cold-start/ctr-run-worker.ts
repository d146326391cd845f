import { chmod, mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ColdStartSample } from './contender.ts'
import type { BenchChild } from './child.ts'
import type { BenchContainerd } from './containerd.ts'
import { listenWorker, requestHello, WORKER_ARGS, WORKER_ENV } from './worker-session.ts'

/** When each step of a started worker happened (performance.now()). */
export interface CtrRunTimes {
  /** `ctr run` spawned. */
  started: number
  hello: number
  ready: number
  firstByteAt: number
  status: number
}

/**
 * The start path every containerd row shares: `ctr run` of the worker with the app (overlay on
 * the given snapshotter, runc), the host's end listening on `<runDir>/control.sock`, then
 * `GET /api/hello` on the worker's socket. Stops the container and removes `runDir` afterwards.
 */
/**
 * A containerd start as a sample: from t0, the caller's pull phase (to t1), then the worker's own
 * phases; bytes and requests are what the registry counted between `before` and `after`.
 */
export function ctrRunSample(o: {
  t0: number
  t1: number
  pullPhase: string
  times: CtrRunTimes
  before: { requests: number; bytes: number }
  after: { requests: number; bytes: number }
  extra: Record<string, number>
}): ColdStartSample {
  const { t0, t1, times } = o
  return {
    ttfbMs: times.firstByteAt - t0,
    bytesFetched: o.after.bytes - o.before.bytes,
    requests: o.after.requests - o.before.requests,
    status: times.status,
    phases: {
      [o.pullPhase]: t1 - t0,
      'ctr run to worker hello': times.hello - t1,
      'app load to ready': times.ready - times.hello,
      'request to first byte': times.firstByteAt - times.ready,
    },
    extra: o.extra,
  }
}

export async function ctrRunWorker(
  containerd: BenchContainerd,
  options: {
    reference: string
    workerDir: string
    runDir: string
    id: string
    snapshotter?: string
    signal: AbortSignal
  },
): Promise<CtrRunTimes> {
  const { runDir } = options
  await mkdir(runDir, { recursive: true })
  await chmod(runDir, 0o777)
  const session = await listenWorker(runDir)
  let run: BenchChild | undefined
  try {
    const started = performance.now()
    run = containerd.spawnCtr(ctrRunArgs(options))
    const failed = run.exited.then((code) => {
      throw new Error(`ctr run exited (${code}) before the answer: ${run?.output().slice(-2000)}`)
    })
    failed.catch(() => {})
    const hello = await Promise.race([session.hello, failed])
    const ready = await Promise.race([session.ready, failed])
    const answer = await requestHello(join(runDir, 'worker.sock'), options.signal)
    return { started, hello, ready, firstByteAt: answer.firstByteAt, status: answer.status }
  } finally {
    await session.close()
    if (run) {
      await Promise.race([run.exited, new Promise((r) => setTimeout(r, 5000))])
      await run.stop()
    }
    await rm(runDir, { recursive: true, force: true })
  }
}

/** `/.thaw/run` (sockets) and `/.thaw/worker` bind-mounted from the host, as the sandbox does. */
export function workerMounts(runDir: string, workerDir: string): string[] {
  return [
    `type=bind,src=${runDir},dst=/.thaw/run,options=rbind:rw`,
    `type=bind,src=${workerDir},dst=/.thaw/worker,options=rbind:ro`,
  ]
}

function ctrRunArgs(o: {
  reference: string
  workerDir: string
  runDir: string
  id: string
  snapshotter?: string
}): string[] {
  const env = Object.entries(WORKER_ENV).flatMap(([k, v]) => ['--env', `${k}=${v}`])
  return [
    'run',
    '--rm',
    ...(o.snapshotter ? ['--snapshotter', o.snapshotter] : []),
    ...workerMounts(o.runDir, o.workerDir).flatMap((m) => ['--mount', m]),
    ...env,
    o.reference,
    o.id,
    ...WORKER_ARGS,
  ]
}
