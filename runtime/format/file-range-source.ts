import { open, type FileHandle } from 'node:fs/promises'
import type { BlobRef, RangeSource } from './reader.ts'

/** A RangeSource over blobs stored as local files (one path per blob index): tests, tools, caches. */
export function fileRangeSource(
  paths: readonly string[],
): RangeSource & { close(): Promise<void> } {
  const handles = new Map<number, Promise<FileHandle>>()
  return {
    async read(blob: BlobRef, offset: number, length: number) {
      const path = paths[blob.index]
      if (path === undefined) throw new Error(`no file for blob ${blob.index}`)
      let handle = handles.get(blob.index)
      if (handle === undefined) handles.set(blob.index, (handle = open(path, 'r')))
      const buf = Buffer.allocUnsafe(length)
      const { bytesRead } = await (await handle).read(buf, 0, length, offset)
      return buf.subarray(0, bytesRead)
    },
    async close() {
      const all = [...handles.values()]
      handles.clear()
      await Promise.all(all.map(async (h) => (await h).close()))
    },
  }
}
