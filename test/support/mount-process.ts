import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { startProcess, type TestProcess } from './processes.ts'

const THAW = join(import.meta.dirname, '..', '..', 'bin', 'thaw')
const mountpoints = new Set<string>()
let hooked = false

/** Lazily unmounts `dir` if it is a mount (a crashed server leaves "transport not connected"). */
export function forceUnmount(dir: string): void {
  try {
    execFileSync('fusermount', ['-u', '-z', dir], { stdio: 'ignore' })
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
  if (!hooked) {
    hooked = true
    afterAll(() => {
      for (const d of mountpoints) forceUnmount(d)
    })
  }
  mkdirSync(options.dir, { recursive: true })
  mountpoints.add(options.dir)
  const args = ['mount', options.reference, options.dir, '--cache', options.cache]
  for (const e of options.edges ?? []) args.push('--edge', e)
  const process = startProcess(THAW, [...args, ...(options.args ?? [])])
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
