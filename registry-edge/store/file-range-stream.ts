import { open, type FileHandle } from 'node:fs/promises'
import type { ByteRange } from '../backend/registry-backend.ts'

/** Largest read per chunk: big enough for few syscalls, small enough to never hold a blob. */
export const READ_CHUNK_BYTES = 1024 * 1024

/**
 * Bytes start..end (inclusive) of a file as a web stream, read with positional reads of at most
 * READ_CHUNK_BYTES, one chunk ahead of the consumer. The file is opened on the first pull and
 * closed at the end, on cancel (client went away) and on error. A file shorter than the range
 * (it cannot happen to an immutable blob, but disks fail) errors the stream instead of ending it
 * early, so a response never silently carries fewer bytes than its Content-Length.
 */
export function fileRangeStream(
  path: string,
  range: ByteRange,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  let handle: FileHandle | undefined
  let position = range.start
  const end = range.end + 1
  const release = async () => {
    const h = handle
    handle = undefined
    await h?.close().catch(() => {})
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        signal?.throwIfAborted()
        handle ??= await open(path, 'r')
        const length = Math.min(READ_CHUNK_BYTES, end - position)
        const buffer = Buffer.allocUnsafe(length)
        const { bytesRead } = await handle.read(buffer, 0, length, position)
        if (bytesRead === 0) throw new Error(`${path} ended at ${position}, before ${end}`)
        position += bytesRead
        controller.enqueue(bytesRead === length ? buffer : buffer.subarray(0, bytesRead))
        if (position >= end) {
          await release()
          controller.close()
        }
      } catch (err) {
        await release()
        controller.error(err)
      }
    },
    cancel: release,
  })
}
