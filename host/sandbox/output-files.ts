import { watch, type FSWatcher } from 'node:fs'
import { open, readFile, truncate, writeFile } from 'node:fs/promises'
import { PassThrough, type Readable } from 'node:stream'

/**
 * A file is emptied once this much of it was read, so a node that prints for days does not fill
 * the host's disk (bytes it appends between that read and the truncation are lost).
 */
export const OUTPUT_FILE_LIMIT = 1024 * 1024

export interface FollowedFile {
  /** The file's bytes from the start offset on, as they are appended. */
  readonly stream: Readable
  /** Reads what is left, then ends the stream. Idempotent. */
  stop(): Promise<void>
}

/**
 * Follows a node's output file (the shim appends to it: oci-runtime.ts NODE_SHIM) from where the
 * last follower got to: the offset read is kept in `<path>.read` (written after each read
 * that moved it), so a host that adopts a running node goes on with what the node printed since,
 * including while no host ran. Reads are driven by inotify (fs.watch): one IN_MODIFY per write
 * the shim's processes make (the kernel coalesces them, it does not drop them), no timer. The
 * file exists before it is followed (the runtime's start creates it).
 */
export function followFile(path: string): FollowedFile {
  const stream = new PassThrough()
  const offsetFile = `${path}.read`
  let offset = 0
  let saved = 0
  let start: Promise<void> | undefined = readFile(offsetFile, 'utf8').then(
    (text) => void (offset = saved = /^\d+$/.test(text) ? Number(text) : 0),
    () => {},
  )
  let reading: Promise<void> = Promise.resolve()
  let stopped = false
  const readMore = () =>
    (reading = reading.then(async () => {
      await start
      start = undefined
      const file = await open(path, 'r').catch(() => undefined)
      if (!file) return
      try {
        for (;;) {
          const buffer = Buffer.alloc(64 * 1024)
          const { bytesRead } = await file.read(buffer, 0, buffer.length, offset)
          if (bytesRead === 0) break
          offset += bytesRead
          stream.write(buffer.subarray(0, bytesRead))
        }
        const { size } = await file.stat()
        if (size < offset) offset = 0 // emptied by someone else
      } finally {
        await file.close()
      }
      if (offset >= OUTPUT_FILE_LIMIT) {
        await truncate(path, 0).catch(() => {})
        offset = 0
      }
      if (offset !== saved) {
        saved = offset
        await writeFile(offsetFile, String(offset)).catch(() => {})
      }
    }))
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(path, () => void readMore())
    watcher.on('error', () => {})
  } catch {
    // The file is gone (removed by hand): stop() reads whatever comes back.
  }
  void readMore()
  return {
    stream,
    async stop() {
      if (stopped) return reading
      stopped = true
      watcher?.close()
      await readMore()
      stream.end()
    },
  }
}
