import { spawn } from 'node:child_process'
import { ThawError } from '../../runtime/errors.ts'

export interface RunCommandOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer
  /** Aborting kills the command (SIGKILL) and rejects with the signal's reason. */
  signal?: AbortSignal
  /** Kills the command after this long and rejects with `COMMAND_TIMEOUT`. */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Each whole line the command writes, on either stream, as it comes (progress). */
  onLine?: (line: string) => void
}

export interface CommandResult {
  stdout: string
  stderr: string
}

/**
 * Runs a host tool (ip, mount, tar, runc …) to completion. A non-zero exit rejects with a
 * `COMMAND_FAILED` ThawError (a system fault) whose message names the command and carries its
 * stderr, so the caller's error says what failed without re-reading logs.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted()
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
    })
    let stdout = ''
    let stderr = ''
    let failure: Error | undefined
    const lines = { stdout: '', stderr: '' }
    const take = (stream: 'stdout' | 'stderr', chunk: string) => {
      if (!options.onLine) return
      const parts = (lines[stream] + chunk).split('\n')
      lines[stream] = parts.pop() ?? ''
      for (const line of parts) options.onLine(line)
    }
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
      take('stdout', c)
    })
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
      take('stderr', c)
    })
    child.stdin.on('error', () => {}) // a command that exits without reading its input
    child.stdin.end(options.input)
    const kill = (err: Error) => {
      failure ??= err
      child.kill('SIGKILL')
    }
    const onAbort = () => kill(asError(options.signal?.reason))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => kill(timeoutError(command, args, options.timeoutMs!)), options.timeoutMs)
    child.once('error', (err) => kill(commandError(command, args, err.message, err)))
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      if (failure) return reject(failure)
      if (code === 0) return resolve({ stdout, stderr })
      const how = code === null ? `was killed by ${signal}` : `exited with ${code}`
      reject(commandError(command, args, `${how}: ${(stderr || stdout).trim().slice(0, 2000)}`))
    })
  })
}

function commandError(command: string, args: readonly string[], detail: string, cause?: unknown) {
  return new ThawError('COMMAND_FAILED', `${describe(command, args)} ${detail}`, { cause })
}

function timeoutError(command: string, args: readonly string[], ms: number) {
  return new ThawError('COMMAND_TIMEOUT', `${describe(command, args)} did not finish in ${ms} ms`)
}

function describe(command: string, args: readonly string[]): string {
  const line = [command, ...args].join(' ')
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'))
}
