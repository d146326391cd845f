import { z } from 'zod'
import { isDigest, sha256Of, type Digest } from '../oci/digest.ts'
import { isCodecName } from './codec/codec.ts'
import { createZstdCodec } from './codec/zstd.ts'
import { FormatError } from './errors.ts'
import type { Frame } from './frame.ts'
import type { FsBlob, FsEntry, FsEntryType, FsIndex } from './fs-index.ts'
import { decodeIndexBlob } from './index-blob.ts'
import { checkFsIndex } from './index-check.ts'

/**
 * The index blob (`application/vnd.thaw.index.v1+json+zstd`): compact JSON in one zstd frame.
 * Entries and frames are arrays, not objects, so a 50 000-entry image stays a few MB of JSON that
 * `JSON.parse` reads in tens of milliseconds. Field by field in README.md "Index blob".
 */
export const INDEX_LIMITS = {
  /** Largest index blob accepted (compressed). */
  maxCompressed: 64 * 2 ** 20,
  /** Largest decoded JSON. */
  maxJson: 512 * 2 ** 20,
  maxEntries: 4_000_000,
}

const TYPE_CODE: Record<FsEntryType, string> = {
  file: 'f',
  directory: 'd',
  symlink: 'l',
  char: 'c',
  block: 'b',
  fifo: 'p',
}
const CODE_TYPE = Object.fromEntries(Object.entries(TYPE_CODE).map(([k, v]) => [v, k])) as Record<
  string,
  FsEntryType
>

type WireExtra = { n?: number; x?: Record<string, string>; h?: number }
type WireRef = 0 | string | [number, number]
type WireEntry = [string, string, number, number, number, number, number, WireRef, WireExtra?]

export function encodeFsIndex(index: FsIndex, level = 9): Buffer {
  const json = JSON.stringify({
    version: index.version,
    codec: index.codec,
    blobs: index.blobs.map((b) => ({
      digest: b.digest,
      size: b.size,
      tarSize: b.tarSize,
      diffId: b.diffId,
      prefetchEnd: b.prefetchEnd,
      frames: b.frames.map((f) => [f.clen, f.ulen, f.digest.slice(7)]),
    })),
    entries: index.entries.map(toWire),
  })
  return createZstdCodec(level).encode(Buffer.from(json, 'utf8'))
}

function toWire(e: FsEntry): WireEntry {
  const ref: WireRef =
    e.type === 'symlink'
      ? e.linkTarget
      : e.type === 'char' || e.type === 'block'
        ? [e.devMajor, e.devMinor]
        : e.type === 'file' && e.blob >= 0
          ? [e.blob, e.offset]
          : 0
  const extra: WireExtra = {}
  if (e.mtimeNsec !== 0) extra.n = e.mtimeNsec
  if (e.hardlinkGroup !== 0) extra.h = e.hardlinkGroup
  if (e.xattrs.size > 0)
    extra.x = Object.fromEntries(
      [...e.xattrs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toString('base64')]),
    )
  const wire: WireEntry = [e.path, TYPE_CODE[e.type], e.mode, e.uid, e.gid, e.size, e.mtime, ref]
  if (Object.keys(extra).length > 0) wire.push(extra)
  return wire
}

const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const digest = z.string().refine(isDigest) as unknown as z.ZodType<Digest>
const wireSchema = z.object({
  version: z.literal(1),
  codec: z.string().refine(isCodecName),
  blobs: z.array(
    z.object({
      digest,
      size: uint,
      tarSize: uint,
      diffId: digest,
      prefetchEnd: uint,
      frames: z.array(z.tuple([uint.min(1), uint.min(1), z.string().regex(/^[a-f0-9]{64}$/)])),
    }),
  ),
  // Entries are checked by hand (fromWire): a zod tuple per entry costs ~10 µs, 0.5 s per 50 000.
  entries: z.array(z.unknown()).max(INDEX_LIMITS.maxEntries),
})

/**
 * Parses an index blob: checks its digest first (the manifest's descriptor, when given), then its
 * size limits, schema, and that every entry and frame points inside its blob.
 */
export function parseFsIndex(bytes: Uint8Array, expected: { digest?: Digest } = {}): FsIndex {
  const json = decodeIndexBlob(
    bytes,
    { maxCompressed: INDEX_LIMITS.maxCompressed, maxDecoded: INDEX_LIMITS.maxJson },
    expected,
  )
  let wire: z.infer<typeof wireSchema>
  try {
    wire = wireSchema.parse(JSON.parse(json.toString('utf8')))
  } catch (err) {
    throw new FormatError(
      'INDEX_INVALID',
      `index blob does not parse: ${(err as Error).message.slice(0, 500)}`,
      { cause: err },
    )
  }
  const index: FsIndex = {
    version: 1,
    codec: wire.codec as FsIndex['codec'],
    blobs: wire.blobs.map(fromWireBlob),
    entries: wire.entries.map(fromWire),
  }
  checkFsIndex(index)
  return index
}

function fromWireBlob(b: z.infer<typeof wireSchema>['blobs'][number]): FsBlob {
  let coff = 0
  let uoff = 0
  const frames: Frame[] = b.frames.map(([clen, ulen, hex]) => {
    const f = { coff, clen, uoff, ulen, digest: `sha256:${hex}` as Digest }
    coff += clen
    uoff += ulen
    return f
  })
  return {
    digest: b.digest,
    size: b.size,
    tarSize: b.tarSize,
    diffId: b.diffId,
    prefetchEnd: b.prefetchEnd,
    frames,
  }
}

const isUint = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isPair = (v: unknown): v is [number, number] =>
  Array.isArray(v) && v.length === 2 && isUint(v[0]) && isUint(v[1])

/** One wire entry `[path, type, mode, uid, gid, size, mtime, ref, extra?]`, checked field by field. */
function fromWire(w: unknown, i: number): FsEntry {
  // No closures in here: tsx/esbuild's keepNames would wrap each one, per entry.
  if (!Array.isArray(w) || w.length < 8 || w.length > 9) throw bad(i, 'not an entry array')
  const [path, code, mode, uid, gid, size, mtime, ref, extra] = w as unknown[]
  const type = CODE_TYPE[code as string]
  if (typeof path !== 'string') throw bad(i, 'path is not a string')
  if (type === undefined) throw bad(i, 'unknown type')
  if (!isUint(mode) || mode > 0o7777 || !isUint(uid) || !isUint(gid) || !isUint(size))
    throw bad(i, 'bad mode, owner or size')
  if (typeof mtime !== 'number' || !Number.isSafeInteger(mtime)) throw bad(i, 'bad mtime')
  const x = parseExtra(extra, i)
  const pair = isPair(ref) ? ref : undefined
  const wantsPair = type === 'char' || type === 'block' || (type === 'file' && ref !== 0)
  if (wantsPair ? pair === undefined : type === 'symlink' ? typeof ref !== 'string' : ref !== 0)
    throw bad(i, 'bad content reference')
  return {
    path,
    type,
    mode,
    uid,
    gid,
    size,
    mtime,
    mtimeNsec: x.n,
    linkTarget: type === 'symlink' ? (ref as string) : '',
    devMajor: type !== 'file' && pair ? pair[0] : 0,
    devMinor: type !== 'file' && pair ? pair[1] : 0,
    xattrs: x.xattrs,
    blob: type === 'file' && pair ? pair[0] : -1,
    offset: type === 'file' && pair ? pair[1] : 0,
    hardlinkGroup: x.h,
  }
}

function bad(i: number, what: string): FormatError {
  return new FormatError('INDEX_INVALID', `entry ${i}: ${what}`)
}

/** Shared by the entries without xattrs (most of them): one Map per entry is GC work per mount. */
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map()
const NO_EXTRA = { n: 0, h: 0, xattrs: NO_XATTRS }

function parseExtra(
  extra: unknown,
  i: number,
): { n: number; h: number; xattrs: ReadonlyMap<string, Buffer> } {
  if (extra === undefined) return NO_EXTRA
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra))
    throw bad(i, 'extra is not an object')
  const { n = 0, h = 0, x } = extra as WireExtra
  if (!isUint(n) || n > 999_999_999 || !isUint(h)) throw bad(i, 'bad nanoseconds or link group')
  if (x === undefined) return { n, h, xattrs: NO_XATTRS }
  if (typeof x !== 'object' || x === null) throw bad(i, 'xattrs is not an object')
  const xattrs = new Map<string, Buffer>()
  for (const [k, v] of Object.entries(x)) {
    if (typeof v !== 'string') throw bad(i, 'xattr value is not base64')
    xattrs.set(k, Buffer.from(v, 'base64'))
  }
  return { n, h, xattrs }
}
