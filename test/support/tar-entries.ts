import { gunzipSync } from 'node:zlib'
import { TarParser } from '../../runtime/format/tar/parser.ts'
import type { TarHeader } from '../../runtime/format/tar/header.ts'

export interface ListedEntry {
  header: TarHeader
  data: Buffer
}

/** Every entry of a tar (gzip-compressed or not), in archive order, with its content. */
export function tarEntries(blob: Buffer): ListedEntry[] {
  const tar = blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob
  const out: ListedEntry[] = []
  let chunks: Buffer[] = []
  const parser = new TarParser({
    entry: (header) => {
      out.push({ header, data: Buffer.alloc(0) })
      chunks = []
    },
    data: (bytes) => chunks.push(Buffer.from(bytes)),
    entryEnd: () => {
      out[out.length - 1]!.data = Buffer.concat(chunks)
    },
  })
  parser.write(tar)
  parser.end()
  return out
}
