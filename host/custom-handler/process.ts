import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { isAbsolute, join } from 'node:path'
import { request } from 'undici'
import { expandArguments, type CustomHandlerConfig } from './config.ts'
import { CustomHandlerError } from './errors.ts'

export interface CustomHandlerProcess {
  readonly child: ChildProcess
  readonly port: number
  readonly baseUrl: string
  /** Resolves with the exit code (or null after a signal). */
  readonly exited: Promise<number | null>
  /** SIGTERM, then SIGKILL after graceMs. Idempotent. */
  stop(graceMs?: number): Promise<void>
}

/**
 * Starts a custom handler as the host does (HOST HttpWorkerProcess.cs, DefaultHttpWorkerService
 * .IsWorkerReady): the executable with its arguments (%SETTING% expanded), in workingDirectory,
 * with the app settings plus FUNCTIONS_CUSTOMHANDLER_PORT (and the legacy names); ready when
 * `GET /` gets any HTTP answer, polled every 25 ms, within `timeoutMs` (host default 30 s).
 */
export async function startCustomHandler(options: {
  scriptRoot: string
  config: CustomHandlerConfig
  env: Record<string, string>
  timeoutMs?: number
  signal?: AbortSignal
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void
}): Promise<CustomHandlerProcess> {
  const { config, scriptRoot } = options
  const port = config.port ?? (await freePort())
  const cwd = config.workingDirectory ? join(scriptRoot, config.workingDirectory) : scriptRoot
  const executable = await resolveExecutable(config.executable, cwd)
  const env: Record<string, string> = {
    ...options.env,
    FUNCTIONS_CUSTOMHANDLER_PORT: String(port),
    FUNCTIONS_HTTPWORKER_PORT: String(port),
    FUNCTIONS_CUSTOMHANDLER_WORKER_ID: 'thaw',
    FUNCTIONS_HTTPWORKER_ID: 'thaw',
    FUNCTIONS_APP_ROOT_PATH: scriptRoot,
  }
  const child = spawn(executable, expandArguments(config.arguments, env), {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
  child.stdout?.on('data', (c: Buffer) => options.onOutput?.('stdout', c))
  child.stderr?.on('data', (c: Buffer) => options.onOutput?.('stderr', c))
  const baseUrl = `http://127.0.0.1:${port}`
  const proc: CustomHandlerProcess = {
    child,
    port,
    baseUrl,
    exited,
    stop: (grace) => stop(child, exited, grace),
  }
  try {
    await waitReady(baseUrl, exited, spawnError, options.timeoutMs ?? 30_000, options.signal)
  } catch (err) {
    await proc.stop(0)
    throw err
  }
  return proc
}

async function waitReady(
  baseUrl: string,
  exited: Promise<number | null>,
  spawnError: Promise<Error>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const stopped = Promise.race([
    exited.then(
      (code) =>
        new CustomHandlerError(
          'CUSTOM_HANDLER_START_FAILED',
          `the custom handler exited with code ${code} before it was ready`,
        ),
    ),
    spawnError.then(
      (err) =>
        new CustomHandlerError(
          'CUSTOM_HANDLER_START_FAILED',
          `cannot start the custom handler: ${err.message}`,
          { cause: err },
        ),
    ),
  ])
  await waitForHandler(baseUrl, { stopped, timeoutMs, signal })
}

/**
 * Polls `GET <baseUrl>/` every 25 ms until any HTTP answer (HOST DefaultHttpWorkerService
 * .IsWorkerReady). Rejects with what `stopped` resolves to once it does (the handler is gone),
 * with CUSTOM_HANDLER_START_FAILED after `timeoutMs`, or with the signal's reason.
 */
export async function waitForHandler(
  baseUrl: string,
  o: { stopped: Promise<Error>; timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  let done: Error | undefined
  void o.stopped.then((err) => {
    done ??= err
  })
  const deadline = Date.now() + o.timeoutMs
  while (!done) {
    o.signal?.throwIfAborted()
    if (Date.now() > deadline) {
      throw new CustomHandlerError(
        'CUSTOM_HANDLER_START_FAILED',
        `the custom handler did not answer GET / within ${o.timeoutMs} ms`,
      )
    }
    try {
      const res = await request(`${baseUrl}/`, { signal: AbortSignal.timeout(1000) })
      await res.body.dump()
      return
    } catch {
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  throw done
}

/** A file in the working directory wins; otherwise a command looked up on PATH by spawn. */
async function resolveExecutable(executable: string, cwd: string): Promise<string> {
  if (isAbsolute(executable)) return executable
  const local = join(cwd, executable)
  try {
    if ((await stat(local)).isFile()) return local
  } catch {
    // not a file here: a command
  }
  return executable
}

async function stop(
  child: ChildProcess,
  exited: Promise<number | null>,
  graceMs = 5000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}
