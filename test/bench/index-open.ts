/**
 * Opening an image's index on a host: the JSON index (parse + tree) against the binary index
 * (decode + check, read in place), for a synthetic image of N entries (default 53 000, the
 * 28-layer bench image's count), with a few lookups after. Medians of `runs`.
 *
 *   node --import tsx test/bench/index-open.ts [entries=53000] [runs=9]
 */
import { BINARY_INDEX_LIMITS, BinaryIndex, encodeBinaryIndex, openBinaryIndex } from '../../runtime/format/binary-index.ts'
import { decodeIndexBlob } from '../../runtime/format/index-blob.ts'
import type { FsEntry, FsIndex } from '../../runtime/format/fs-index.ts'
import { FsTree } from '../../runtime/format/fs-tree.ts'
import { encodeFsIndex, parseFsIndex } from '../../runtime/format/index-codec.ts'
import { sha256Of, type Digest } from '../../runtime/oci/digest.ts'

const entries = Number(process.argv[2] ?? 53_000)
const runs = Number(process.argv[3] ?? 9)
const digest = (s: string) => sha256Of(Buffer.from(s)) as Digest
const frames = Array.from({ length: 2000 }, (_, i) => ({ coff: i * 300_000, clen: 300_000, uoff: i * 1_000_000, ulen: 1_000_000, digest: digest(`f${i}`) }))
const index: FsIndex = {
  version: 1,
  codec: 'zstd',
  blobs: [{ digest: digest('blob'), size: 2000 * 300_000, tarSize: 2000 * 1_000_000, diffId: digest('diff'), prefetchEnd: 0, frames }],
  entries: [],
}
const base = { uid: 0, gid: 0, mtime: 1_700_000_000, mtimeNsec: 0, linkTarget: '', devMajor: 0, devMinor: 0, xattrs: new Map(), hardlinkGroup: 0 }
const paths: string[] = ['']
for (let d = 0; paths.length < entries; d++) {
  paths.push(`usr/lib/node_modules/pkg${d}`)
  for (let f = 0; f < 25 && paths.length < entries; f++) paths.push(`usr/lib/node_modules/pkg${d}/file-${f}.js`)
}
paths.push('usr', 'usr/lib', 'usr/lib/node_modules')
paths.sort()
let offset = 0
index.entries = paths.map((path): FsEntry => {
  const dir = path === '' || !path.endsWith('.js')
  const e = { ...base, path, type: dir ? ('directory' as const) : ('file' as const), mode: dir ? 0o755 : 0o644, size: dir ? 0 : 1000, blob: dir ? -1 : 0, offset: dir ? 0 : offset }
  if (!dir) offset += 1512
  return e
})
const json = encodeFsIndex(index)
const binary = encodeBinaryIndex(index)
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!
const time = (f: () => void) => {
  const t = performance.now()
  f()
  return performance.now() - t
}
const probe = 'usr/lib/node_modules/pkg777/file-3.js'
const rows = {
  json: [] as number[],
  binary: [] as number[],
  digest: [] as number[],
  decode: [] as number[],
  records: [] as number[],
}
// JSON first, in a loop of its own: the garbage of 53 000 parsed entries would otherwise be
// collected during the binary rounds.
for (let r = 0; r < runs; r++)
  rows.json.push(time(() => new FsTree(parseFsIndex(json, { digest: sha256Of(json) })).lookup(probe)!))
for (let r = 0; r < runs; r++) {
  rows.binary.push(time(() => openBinaryIndex(binary, { digest: sha256Of(binary) }).lookup(probe)!))
  // The binary open's parts: the blob's digest, the zstd decode, the records' checks.
  rows.digest.push(time(() => sha256Of(binary)))
  let decoded: Buffer = Buffer.alloc(0)
  rows.decode.push(time(() => (decoded = decodeIndexBlob(binary, BINARY_INDEX_LIMITS))))
  rows.records.push(time(() => new BinaryIndex(decoded)))
}
console.log(`${index.entries.length} entries; blob sizes: JSON ${json.length} B, binary ${binary.length} B (zstd)`)
console.log(`open + one lookup, medians of ${runs} (ms): JSON ${median(rows.json).toFixed(1)}, binary ${median(rows.binary).toFixed(1)}`)
console.log(`binary, its parts (ms): digest ${median(rows.digest).toFixed(1)}, decode ${median(rows.decode).toFixed(1)}, records ${median(rows.records).toFixed(1)}`)
const min = (xs: number[]) => Math.min(...xs).toFixed(1)
console.log(`minimums (ms; less disturbed by load): binary ${min(rows.binary)}, digest ${min(rows.digest)}, decode ${min(rows.decode)}, records ${min(rows.records)}`)
