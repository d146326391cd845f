import { watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { processStartTime } from './instance-registry.ts'

/** A process named by PID and start time (a recycled PID is not the same process). */
export interface ProcessIdentity {
  pid: number
  startTime: string
}

/** How often the shim's liveness is checked while no exit status has appeared. */
const POLL_MS = 1000

/**
 * The status a node's shim wrote when its runtime exited (oci-runtime.ts NODE_SHIM), or null
 * when the shim is gone without writing one (it was killed: the container may still run). The
 * same wait serves a node this host started and one it adopted: neither is its child.
 */
export function waitForExitFile(exitFile: string, shim: ProcessIdentity): Promise<number | null> {
  return new Promise((resolve) => {
    let done = false
    const name = basename(exitFile)
    const status = async () => {
      const text = await readFile(exitFile, 'utf8').catch(() => '')
      return /^\d+$/.test(text.trim()) ? Number(text) : undefined
    }
    const check = async () => {
      if (done) return
      let code = await status()
      if (code === undefined && (await processStartTime(shim.pid)) === shim.startTime) return
      code ??= await status() // it may have written the file just before it exited
      finish(code ?? null)
    }
    const watcher = watch(dirname(exitFile), (_event, file) => {
      if (file === null || file === name) void check()
    })
    watcher.on('error', () => {})
    const timer = setInterval(() => void check(), POLL_MS)
    const finish = (code: number | null) => {
      if (done) return
      done = true
      watcher.close()
      clearInterval(timer)
      resolve(code)
    }
    void check()
  })
}
