import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { startProcess, type TestProcess } from './processes.ts'

const THAW = join(import.meta.dirname, '..', '..', 'bin', 'thaw')
const mountpoints = new Set<string>()
const servers = new Set<TestProcess>()

// Registered when a test file imports this module (collection time), so it runs at the end of
// that file whatever happened: a hook registered from inside a running test would not.
afterAll(async () => {
  await Promise.all([...servers].map((p) => p.stop(5_000).catch(() => {})))
  for (const d of mountpoints) forceUnmount(d)
})

/** Lazily unmounts `dir` if it is a mount (a crashed server leaves "transport not connected"). */
export function forceUnmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
  } catch {
    // not mounted
  }
}

export interface MountProcess {
  process: TestProcess
  dir: string
  /** SIGTERM, wait for the exit; returns the "fetched:" report it printed. */
  stop(): Promise<Record<string, number>>
}

/**
 * `thaw mount` in a child process, so the test process can read the mount synchronously (a process
 * serving a FUSE mount must never do that itself). The mount is always detached at the end of the
 * file, also when a test fails or the server was killed.
 */
export async function startMount(options: {
  reference: string
  dir: string
  cache: string
  edges?: string[]
  args?: string[]
}): Promise<MountProcess> {
  mkdirSync(options.dir, { recursive: true })
  mountpoints.add(options.dir)
  const args = ['mount', options.reference, options.dir, '--cache', options.cache]
  for (const e of options.edges ?? []) args.push('--edge', e)
  const process = startProcess(THAW, [...args, ...(options.args ?? [])])
  servers.add(process)
  await process.waitFor(/^mounted /m, 60_000)
  return {
    process,
    dir: options.dir,
    async stop() {
      await process.stop(10_000)
      const m = process.output().match(/^fetched: (.*)$/m)
      return m ? (JSON.parse(m[1]!) as Record<string, number>) : {}
    },
  }
}

/**
 * Runs a command (a reader of a mount) to completion, resolving after its output streams closed
 * (processes.ts `run` resolves at 'exit', when stderr may still be in flight, so its error text
 * can be missing under load); rejects with the output on a non-zero exit.
 */
export async function runReader(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}\n${stderr}${stdout}`.slice(0, 8000))
  return { stdout, stderr }
}
