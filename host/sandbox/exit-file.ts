import { readFile } from 'node:fs/promises'
import type { RunFiles } from './oci-runtime.ts'
import { runtimeGone } from './shim-fifos.ts'

/** A process named by PID and start time (a recycled PID is not the same process). */
export interface ProcessIdentity {
  pid: number
  startTime: string
}

/**
 * The status a node's shim wrote when its runtime exited (oci-runtime.ts NODE_SHIM), or null
 * when the shim and the runtime are gone without one (the shim was killed). Told by the end of
 * the runtime FIFO (shim-fifos.ts), which comes after the file is written; the same wait serves a
 * node this host started and one it adopted: neither is its child.
 */
export async function waitForExitFile(
  files: Pick<RunFiles, 'exitFile' | 'runtimeFifo'>,
): Promise<number | null> {
  await runtimeGone(files)
  const text = await readFile(files.exitFile, 'utf8').catch(() => '')
  return /^\d+$/.test(text.trim()) ? Number(text) : null
}
