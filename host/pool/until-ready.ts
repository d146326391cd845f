import { ThawError } from '../../runtime/errors.ts'
import type { NodeProcess } from '../sandbox/node-handle.ts'

/**
 * Waits for `ready` while watching the node: rejects with NODE_START_FAILED when the node's
 * process exits first (with the last lines of its stderr) or the signal aborts.
 */
export async function untilReady<T>(
  ready: Promise<T>,
  proc: NodeProcess,
  signal: AbortSignal,
): Promise<T> {
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () =>
      reject(
        startFailed(`the app did not start: ${String(signal.reason?.message ?? signal.reason)}`),
      )
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  // Waiting a little gives a fatal message sent just before the exit the chance to win: it says more.
  const exited = exitedBeforeReady(proc).then((err) => Promise.reject(err))
  try {
    return await Promise.race([ready, aborted, exited])
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Resolves, 50 ms after the node's process exited (its last output has been read by then), with
 * a NODE_START_FAILED error that says how it ended and quotes the last lines of its stderr.
 */
export async function exitedBeforeReady(proc: NodeProcess): Promise<ThawError> {
  const exit = await proc.exited
  await new Promise((r) => setTimeout(r, 50))
  const tail = proc.output().stderr.trim().split('\n').slice(-5).join('\n')
  return startFailed(`the node ${exit.message} before the app was ready${tail ? `:\n${tail}` : ''}`)
}

export function startFailed(message: string): ThawError {
  return new ThawError('NODE_START_FAILED', message)
}
