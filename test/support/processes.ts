import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { onCleanup } from './cleanup.ts'

/**
 * Real processes for tests. Every process started here is stopped (by PID: SIGTERM, then SIGKILL)
 * when its test file ends, also when a test fails.
 */
export interface TestProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything written to stdout and stderr so far. */
  output(): string
  /** Resolves when a line matching `pattern` appears; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>
  /** SIGKILL now, as a crash would. */
  kill(): Promise<void>
  readonly exited: Promise<number | null>
}

const running = new Set<TestProcess>()

export function startProcess(
  command: string,
  args: string[],
  options: SpawnOptions = {},
): TestProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  let out = ''
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    out += chunk.toString()
    if (out.length > 4_000_000) out = out.slice(-2_000_000)
    for (const l of listeners) l()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(proc)
      for (const l of listeners) l()
      resolve(code)
    })
  })
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(child.pid!, sig)
    } catch {
      return
    }
    await exited
  }
  const proc: TestProcess = {
    child,
    pid: child.pid,
    exited,
    output: () => out,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern)
          if (m) return finish(() => resolve(m))
          if (child.exitCode !== null || child.signalCode !== null) {
            finish(() =>
              reject(new Error(`${command} exited before ${pattern}:\n${out.slice(-4000)}`)),
            )
          }
        }
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`timed out waiting for ${pattern}:\n${out.slice(-4000)}`)),
            ),
          timeoutMs,
        )
        const finish = (f: () => void) => {
          clearTimeout(timer)
          listeners.delete(check)
          f()
        }
        listeners.add(check)
        check()
      })
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      const timer = setTimeout(() => void signal('SIGKILL'), graceMs)
      await signal('SIGTERM')
      clearTimeout(timer)
    },
    kill: () => signal('SIGKILL'),
  }
  running.add(proc)
  onCleanup('servers', () => proc.stop())
  return proc
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function run(
  command: string,
  args: string[],
  options: SpawnOptions & { input?: string | Buffer } = {},
): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdin?.end(options.input)
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${code}\n${stderr}${stdout}`.slice(0, 8000),
    )
  }
  return { stdout, stderr }
}
