import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { stop } from './registry.ts'

/** A helper process the benchmark started (proxy, containerd, ctr run); stopped by its PID only. */
export interface BenchChild {
  readonly child: ChildProcess
  readonly pid: number
  output(): string
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
  stop(): Promise<void>
}

/**
 * Starts `command`; its output (stdout and stderr) is kept in memory (the last MB, `output()`)
 * and, with `logFile`, appended to that file whole, to be read after a run.
 */
export function startChild(
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
  logFile?: string,
): BenchChild {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  let out = ''
  const listeners = new Set<() => void>()
  const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined
  log?.on('error', () => {}) // a log that cannot be written loses the file, not the run
  const onData = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-1_000_000)
    log?.write(chunk)
    for (const l of listeners) l()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      for (const l of listeners) l()
      resolve(code)
    }),
  )
  child.once('close', () => log?.end()) // after the last output
  return {
    child,
    pid: child.pid,
    output: () => out,
    exited,
    stop: () => stop(child),
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern)
          if (m) done(() => resolve(m))
          else if (child.exitCode !== null || child.signalCode !== null)
            done(() =>
              reject(new Error(`${command} exited before ${pattern}: ${out.slice(-2000)}`)),
            )
        }
        const timer = setTimeout(
          () => done(() => reject(new Error(`${command}: no ${pattern} in ${timeoutMs} ms`))),
          timeoutMs,
        )
        const done = (f: () => void) => {
          clearTimeout(timer)
          listeners.delete(check)
          f()
        }
        listeners.add(check)
        check()
      })
    },
  }
}

/**
 * CPU time a process has used, in ms: the sum over its threads of /proc/<pid>/task/<tid>/schedstat's
 * first field (nanoseconds on a CPU), so it is exact, not tick-rounded like /proc/<pid>/stat.
 */
export async function cpuMs(pid: number): Promise<number> {
  let ns = 0
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0')
    ns += Number(text.split(' ')[0])
  }
  return ns / 1e6
}
