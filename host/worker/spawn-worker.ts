import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { WorkerEnv } from '../../runtime/protocol/worker-contract.ts'
import type {
  FatalMessage,
  ReadyMessage,
  WorkerMessage,
} from '../../runtime/protocol/worker-messages.ts'
import { listenControl, type ControlServer } from './control-server.ts'

/** A worker running as a local child process, started and ready. */
export interface LocalWorker {
  readonly child: ChildProcess
  readonly pid: number
  readonly ready: ReadyMessage
  readonly control: ControlServer
  readonly exited: Promise<number | null>
  /** Sends `shutdown`, waits for the exit (graceMs + 1 s), then SIGKILL. Idempotent. */
  stop(graceMs: number): Promise<void>
}

/** The worker reported a startup failure (`fatal`), or exited or timed out before `ready`. */
export class WorkerStartError extends Error {
  constructor(
    message: string,
    readonly kind: 'fatal' | 'exited' | 'timeout' | 'aborted',
    readonly output: string,
    readonly fatal?: FatalMessage,
  ) {
    super(message)
    this.name = 'WorkerStartError'
  }
}

export interface SpawnWorkerOptions {
  /** The bundled worker (runtime/worker/bundle.ts bundleWorker()). */
  workerPath: string
  scriptRoot: string
  /** The whole environment of the worker (app settings included); the contract's names are added. */
  env: Record<string, string>
  /** Where the two sockets go (keep the path short: unix socket paths are limited to 107 bytes). */
  socketDir: string
  /** A short name for this worker's sockets, unique in socketDir. */
  name: string
  /** Extra node arguments, e.g. ['--import', <tsx loader URL>] to load TypeScript sources. */
  nodeArgs?: string[]
  /** THAW_MAIN: load these entry points instead of package.json#main. */
  main?: string
  startTimeoutMs?: number
  signal?: AbortSignal
  /** Every control message, from `hello` on (ready/fatal included). */
  onMessage?: (message: WorkerMessage) => void
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void
}

/**
 * Starts `node [nodeArgs] <worker.mjs>` with THAW_CONTROL / THAW_LISTEN / AzureWebJobsScriptRoot
 * and waits for `ready`. The sandboxed host starts the worker differently (inside a node) but
 * speaks to it the same way: listenControl + createWorkerClient.
 */
export async function spawnWorker(options: SpawnWorkerOptions): Promise<LocalWorker> {
  const controlPath = join(options.socketDir, `${options.name}.ctl`)
  const listenPath = join(options.socketDir, `${options.name}.sock`)
  const control = await listenControl(controlPath)
  const env: Record<string, string> = {
    ...options.env,
    [WorkerEnv.control]: controlPath,
    [WorkerEnv.listen]: listenPath,
    [WorkerEnv.scriptRoot]: options.scriptRoot,
  }
  if (options.main) env[WorkerEnv.main] = options.main
  else delete env[WorkerEnv.main]
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.workerPath], {
    cwd: options.scriptRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const capture = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000)
    options.onOutput?.(stream, chunk)
  }
  child.stdout?.on('data', capture('stdout'))
  child.stderr?.on('data', capture('stderr'))
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code))
    child.once('error', () => resolve(null))
  })

  let onReady!: (m: ReadyMessage) => void
  let onFatal!: (m: FatalMessage) => void
  const readyOrFatal = new Promise<ReadyMessage>((resolve, reject) => {
    onReady = resolve
    onFatal = (m) => reject(new WorkerStartError(m.message, 'fatal', output, m))
  })
  control.onMessage((m) => {
    if (m.type === 'ready') onReady(m)
    if (m.type === 'fatal') onFatal(m)
    options.onMessage?.(m)
  })

  let stopping: Promise<void> | undefined
  const stop = (graceMs: number) =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (!control.send({ type: 'shutdown', graceMs })) child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs + 1000)
        await exited
        clearTimeout(timer)
      }
      await control.close()
    })())

  try {
    const ready = await withStartLimits(readyOrFatal, exited, options, () => output)
    return { child, pid: child.pid!, ready, control, exited, stop }
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    await control.close()
    throw err
  }
}

async function withStartLimits(
  ready: Promise<ReadyMessage>,
  exited: Promise<number | null>,
  options: SpawnWorkerOptions,
  output: () => string,
): Promise<ReadyMessage> {
  const timeoutMs = options.startTimeoutMs ?? 60_000
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const limits = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new WorkerStartError(
            `the worker was not ready within ${timeoutMs} ms`,
            'timeout',
            output(),
          ),
        ),
      timeoutMs,
    )
    onAbort = () => reject(new WorkerStartError('worker start aborted', 'aborted', output()))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    void exited.then((code) =>
      // Let a fatal message that arrived just before the exit win: it says more.
      setTimeout(
        () =>
          reject(
            new WorkerStartError(
              `the worker exited with code ${code} before it was ready`,
              'exited',
              output(),
            ),
          ),
        50,
      ),
    )
  })
  try {
    return await Promise.race([ready, limits])
  } finally {
    clearTimeout(timer)
    if (onAbort) options.signal?.removeEventListener('abort', onAbort)
  }
}
