import { close, constants, open as openCallback, read } from 'node:fs'
import { open, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { Socket } from 'node:net'
import { promisify } from 'node:util'
import { runCommand } from '../os/run-command.ts'
import type { RunFiles } from './oci-runtime.ts'

/**
 * The two FIFOs between a host and a node's shim (oci-runtime.ts NODE_SHIM), in place of
 * polling: each side holds one open, and the other learns of its end from end-of-file, which the
 * kernel delivers when the holder dies, however it dies.
 */
export type ShimFifos = Pick<RunFiles, 'hostFifo' | 'runtimeFifo' | 'orphanTimeoutFile'>

const openFd = promisify(openCallback)
const readFd = promisify(read)

/** Creates the FIFOs that are missing (Node.js cannot make one: mkfifo(1), one process). */
export async function makeShimFifos(files: ShimFifos): Promise<void> {
  const paths = [files.hostFifo, files.runtimeFifo]
  const present = await Promise.all(
    paths.map((p) =>
      stat(p).then(
        (s) => s.isFIFO(),
        () => false,
      ),
    ),
  )
  const missing = paths.filter((_, i) => !present[i])
  if (missing.length > 0) await runCommand('mkfifo', ['-m', '0600', ...missing])
}

/**
 * Holds the host FIFO open for this host (read-write, so the open never waits; close-on-exec, as
 * Node.js opens everything, so no runtime or node inherits it), after writing how long the node
 * waits for a next host should this one die. Close the handle to let the node go.
 */
export async function holdHostFifo(
  files: ShimFifos,
  orphanTimeoutSeconds: number,
): Promise<FileHandle> {
  await writeFile(files.orphanTimeoutFile, `${orphanTimeoutSeconds}\n`)
  return open(files.hostFifo, constants.O_RDWR)
}

/**
 * Resolves once the shim and the runtime are both gone: end-of-file on the runtime FIFO, read
 * through the event loop (a pipe handle in epoll, no thread and no timer per node). Call it once
 * the shim has opened its end (the runtime wrote its PID file after that), or for a shim that
 * may be gone already: with no writer the read ends at once.
 */
export async function runtimeGone(files: Pick<RunFiles, 'runtimeFifo'>): Promise<void> {
  let fd: number
  try {
    fd = await openFd(files.runtimeFifo, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return // no FIFO: nothing holds it
  }
  // A reader that opens a FIFO no writer holds never gets EPOLLHUP (the kernel signals a hang-up
  // only for writers that came after the open): ask once, without waiting. 0 bytes: no writer is
  // left, and none comes back; EAGAIN: writers hold it, and epoll tells when the last one goes.
  const ended = await readFd(fd, Buffer.alloc(1), 0, 1, null).then(
    ({ bytesRead }) => bytesRead === 0,
    () => false,
  )
  if (ended) return void close(fd, () => {})
  const pipe = new Socket({ fd, readable: true, writable: false })
  await new Promise<void>((resolve) => {
    pipe.on('data', () => {}) // nobody writes; reading is what notices the end
    pipe.once('end', resolve)
    pipe.once('close', resolve)
    pipe.once('error', () => resolve())
  })
  pipe.destroy()
}
