import { sha256Of, type Digest } from '../oci/digest.ts'
import type { CodecName } from './codec/codec.ts'
import { createZstdCodec } from './codec/zstd.ts'
import { FormatError } from './errors.ts'
import { decodeIndexBlob } from './index-blob.ts'
import type { Frame } from './frame.ts'
import type { FsBlob, FsEntryType, FsIndex } from './fs-index.ts'
import type { FsNode } from './fs-tree.ts'
import type { IndexTree } from './index-tree.ts'

/**
 * The binary index (`application/vnd.thaw.index.v2+zstd`): the same filesystem as the JSON index,
 * laid out so a host uses it in place, without parsing it whole: fixed-size records, directories'
 * children contiguous and sorted by name (a lookup is a binary search), names in one string table.
 * One zstd frame on the wire; decoded, it is (little-endian, sections back to back):
 *
 *   header   64 bytes   "thawidx\0" | version u32 = 1 | codec u32 (0 zstd, 1 gzip)
 *                       | entries u32 | blobs u32 | frames u32 | xattrs u32 | strings u64 | 0 × 24
 *   blobs    96 each    digest [32] | diffId [32] | size u64 | tarSize u64 | prefetchEnd u64
 *                       | firstFrame u32 | frameCount u32
 *   frames   56 each    coff u64 | uoff u64 | clen u32 | ulen u32 | sha256 of the compressed frame [32]
 *   entries  88 each    nameOff u32 | nameLen u16 | type u8 | 0 u8 | parent u32 | firstChild u32
 *                       | childCount u32 | mode u32 | uid u32 | gid u32 | nlink u32 | ino u32
 *                       | size u64 | mtime i64 | mtimeNsec u32 | blob i32 | ref u64
 *                       | xattrFirst u32 | xattrCount u32 | hardlinkGroup u32 | 0 u32
 *   xattrs   16 each    keyOff u32 | keyLen u32 | valueOff u32 | valueLen u32
 *   strings  bytes      names, symlink targets, xattr keys and values (UTF-8, deduplicated)
 *
 * Entry 0 is the root. Entries are in breadth-first order, so a directory's children are the
 * contiguous records [firstChild, firstChild + childCount), sorted by name bytes. `ino` is the
 * 1-based record number of the inode (its own, or its hard-link group's first record); `ref` is
 * the tar offset of a file's content in blob `blob`, the string offset of a symlink's target
 * (`size` is its length), or `major << 32 | minor` of a device. The header, blobs and frames are
 * checked when the index is opened; a record is checked the first time it is read (checkRecord),
 * and a directory's children when they are listed, so opening costs no pass over the entries and
 * nothing read can point outside the index or make a cycle.
 */
export const BINARY_INDEX_LIMITS = {
  maxCompressed: 64 * 2 ** 20,
  maxDecoded: 1024 * 2 ** 20,
  maxEntries: 4_000_000,
}
const MAGIC = Buffer.from('thawidx\0', 'latin1')
const HEADER = 64
const BLOB = 96
const FRAME = 56
const ENTRY = 88
const XATTR = 16
const TYPES: readonly FsEntryType[] = ['file', 'directory', 'symlink', 'char', 'block', 'fifo']
const CODECS: readonly CodecName[] = ['zstd', 'gzip']

/**
 * zstd level of the binary index: it goes out in the first response of every start (record 0 of
 * a bundle), and is encoded once per conversion, in the conversion's worker. The bench's 28-layer,
 * 53 003-entry image: 829 KB at level 9, 649 KB at 19, which took 4.1 s instead of under 1 s
 * at load 3 (decoding costs the same).
 */
export const BINARY_INDEX_LEVEL = 19

/** Encodes an index (as buildFsIndex makes it) to the binary form, zstd-compressed. */
export function encodeBinaryIndex(index: FsIndex, level = BINARY_INDEX_LEVEL): Buffer {
  return createZstdCodec(level).encode(layoutBinaryIndex(index))
}

/** The decoded bytes of the binary index of `index` (tests read them). */
export function layoutBinaryIndex(index: FsIndex): Buffer {
  const order = breadthFirst(index)
  const strings = new StringTable()
  const frames = index.blobs.flatMap((b) => b.frames)
  const xattrCount = index.entries.reduce((n, e) => n + e.xattrs.size, 0)
  const size = HEADER + BLOB * index.blobs.length + FRAME * frames.length
  const out = Buffer.alloc(size + ENTRY * order.length + XATTR * xattrCount)
  MAGIC.copy(out, 0)
  out.writeUInt32LE(1, 8)
  out.writeUInt32LE(CODECS.indexOf(index.codec), 12)
  out.writeUInt32LE(order.length, 16)
  out.writeUInt32LE(index.blobs.length, 20)
  out.writeUInt32LE(frames.length, 24)
  out.writeUInt32LE(xattrCount, 28)
  let at = HEADER
  let frame = 0
  for (const b of index.blobs) {
    Buffer.from(b.digest.slice(7), 'hex').copy(out, at)
    Buffer.from(b.diffId.slice(7), 'hex').copy(out, at + 32)
    writeU64(out, at + 64, b.size)
    writeU64(out, at + 72, b.tarSize)
    writeU64(out, at + 80, b.prefetchEnd)
    out.writeUInt32LE(frame, at + 88)
    out.writeUInt32LE(b.frames.length, at + 92)
    frame += b.frames.length
    at += BLOB
  }
  for (const f of frames) {
    writeU64(out, at, f.coff)
    writeU64(out, at + 8, f.uoff)
    out.writeUInt32LE(f.clen, at + 16)
    out.writeUInt32LE(f.ulen, at + 20)
    Buffer.from(f.digest.slice(7), 'hex').copy(out, at + 24)
    at += FRAME
  }
  const xattrAt = at + ENTRY * order.length
  let xattr = 0
  for (const r of order) {
    const e = index.entries[r.entry]!
    const name = strings.add(Buffer.from(basename(e.path)))
    out.writeUInt32LE(name.offset, at)
    out.writeUInt16LE(name.length, at + 4)
    out.writeUInt8(TYPES.indexOf(e.type), at + 6)
    out.writeUInt32LE(r.parent, at + 8)
    out.writeUInt32LE(r.firstChild, at + 12)
    out.writeUInt32LE(r.childCount, at + 16)
    out.writeUInt32LE(e.mode, at + 20)
    out.writeUInt32LE(e.uid, at + 24)
    out.writeUInt32LE(e.gid, at + 28)
    out.writeUInt32LE(r.nlink, at + 32)
    out.writeUInt32LE(r.ino, at + 36)
    let ref = 0
    let size = e.size
    if (e.type === 'symlink') {
      const target = strings.add(Buffer.from(e.linkTarget))
      ref = target.offset
      size = target.length
    } else if (e.type === 'char' || e.type === 'block') ref = e.devMajor * 2 ** 32 + e.devMinor
    else if (e.type === 'file') ref = e.offset
    writeU64(out, at + 40, size)
    out.writeBigInt64LE(BigInt(e.mtime), at + 48)
    out.writeUInt32LE(e.mtimeNsec, at + 56)
    out.writeInt32LE(e.blob, at + 60)
    writeU64(out, at + 64, ref)
    out.writeUInt32LE(xattr, at + 72)
    out.writeUInt32LE(e.xattrs.size, at + 76)
    out.writeUInt32LE(e.hardlinkGroup, at + 80)
    for (const [key, value] of [...e.xattrs].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const k = strings.add(Buffer.from(key))
      const v = strings.add(value)
      const x = xattrAt + XATTR * xattr++
      out.writeUInt32LE(k.offset, x)
      out.writeUInt32LE(k.length, x + 4)
      out.writeUInt32LE(v.offset, x + 8)
      out.writeUInt32LE(v.length, x + 12)
    }
    at += ENTRY
  }
  const table = strings.bytes()
  writeU64(out, 32, table.length)
  return Buffer.concat([out, table])
}

interface Placed {
  entry: number
  parent: number
  firstChild: number
  childCount: number
  ino: number
  nlink: number
}

/** Records in breadth-first order with their tree links, inode numbers and link counts. */
function breadthFirst(index: FsIndex): Placed[] {
  const children = new Map<string, number[]>()
  index.entries.forEach((e, i) => {
    if (e.type === 'directory') children.set(e.path, [])
    if (e.path !== '') children.get(parentPath(e.path))!.push(i)
  })
  const name = (i: number) => Buffer.from(basename(index.entries[i]!.path))
  for (const list of children.values()) list.sort((a, b) => Buffer.compare(name(a), name(b)))
  const order: Placed[] = [{ entry: 0, parent: 0, firstChild: 0, childCount: 0, ino: 1, nlink: 1 }]
  for (let i = 0; i < order.length; i++) {
    const kids = children.get(index.entries[order[i]!.entry]!.path)
    if (!kids) continue
    order[i]!.firstChild = kids.length > 0 ? order.length : 0
    order[i]!.childCount = kids.length
    order[i]!.nlink = 2 + kids.filter((k) => index.entries[k]!.type === 'directory').length
    for (const k of kids) {
      order.push({
        entry: k,
        parent: i,
        firstChild: 0,
        childCount: 0,
        ino: order.length + 1,
        nlink: 1,
      })
    }
  }
  const groups = new Map<number, Placed[]>()
  for (const p of order) {
    const g = index.entries[p.entry]!.hardlinkGroup
    if (g > 0) groups.set(g, [...(groups.get(g) ?? []), p])
  }
  for (const members of groups.values()) {
    for (const p of members) {
      p.ino = members[0]!.ino
      p.nlink = members.length
    }
  }
  return order
}

class StringTable {
  readonly #parts: Buffer[] = []
  readonly #seen = new Map<string, number>()
  #length = 0

  add(bytes: Buffer): { offset: number; length: number } {
    const key = bytes.toString('latin1')
    let offset = this.#seen.get(key)
    if (offset === undefined) {
      offset = this.#length
      this.#seen.set(key, offset)
      this.#parts.push(bytes)
      this.#length += bytes.length
    }
    return { offset, length: bytes.length }
  }

  bytes(): Buffer {
    return Buffer.concat(this.#parts)
  }
}

/**
 * Opens a binary index blob: its digest first (when given), then its size limits, then its header,
 * blobs and frames. The result answers lookups from the decoded bytes in place, checking each
 * record the first time it is read (checkRecord).
 */
export function openBinaryIndex(
  bytes: Uint8Array,
  expected: { digest?: Digest } = {},
): BinaryIndex {
  const decoded = decodeIndexBlob(bytes, BINARY_INDEX_LIMITS, expected)
  return new BinaryIndex(decoded)
}

/** The binary index, read in place; each record is checked the first time it is read. */
export class BinaryIndex implements IndexTree {
  readonly bytes: Buffer
  readonly codec: CodecName
  readonly blobs: readonly FsBlob[]
  readonly entryCount: number
  readonly #h: Header
  readonly #entries: number
  readonly #xattrs: number
  readonly #strings: number
  /** The records as 32-bit words (22 per entry); 64-bit fields are two words (low, high). */
  readonly #words: Uint32Array
  readonly #nodes: (FsNode | undefined)[] = []
  readonly #listings = new Map<number, readonly string[]>()
  #totalBytes: number | undefined

  constructor(bytes: Buffer) {
    this.bytes = bytes
    const h = readHeader(bytes)
    this.#h = h
    this.codec = h.codec
    this.entryCount = h.entries
    const framesAt = HEADER + BLOB * h.blobs
    this.#entries = framesAt + FRAME * h.frames
    this.#xattrs = this.#entries + ENTRY * h.entries
    this.#strings = this.#xattrs + XATTR * h.xattrs
    this.#words = words(bytes, this.#entries, WORDS * h.entries)
    this.blobs = readBlobs(bytes, h.blobs, h.frames, framesAt)
  }

  /** Sum of regular files' sizes (statfs): one pass over the records, on first use. */
  get totalBytes(): number {
    if (this.#totalBytes === undefined) {
      const e = this.#words
      let total = 0
      for (let w = 0; w < e.length; w += WORDS) {
        if (((e[w + 1]! >>> 16) & 0xff) === 0) total += e[w + 10]! + e[w + 11]! * 2 ** 32
      }
      this.#totalBytes = total
    }
    return this.#totalBytes
  }

  node(ino: number): FsNode | undefined {
    const i = ino - 1
    if (!Number.isInteger(i) || i < 0 || i >= this.entryCount) return undefined
    return (this.#nodes[i] ??= this.#read(i))
  }

  child(dir: FsNode, name: string): FsNode | undefined {
    const b = this.bytes
    const e = this.#words
    const d = dir.ino - 1
    let lo = e[WORDS * d + 3]!
    let hi = lo + e[WORDS * d + 4]! - 1
    const want = Buffer.from(name)
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const w = WORDS * mid
      const nameLen = e[w + 1]! & 0xffff
      if (e[w]! + nameLen > this.#h.strings) throw bad(mid, 'name outside the string table')
      const off = this.#strings + e[w]!
      // The record's name against the one wanted: < 0 when the record sorts first.
      const c = b.compare(want, 0, want.length, off, off + nameLen)
      if (c === 0) return this.#childOf(d, mid)
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  /** The names in `dir`, checked once: each one path component, sorted and unique. */
  children(dir: FsNode): readonly string[] {
    const d = dir.ino - 1
    let names = this.#listings.get(d)
    if (names === undefined) {
      const e = this.#words
      const first = e[WORDS * d + 3]!
      const count = e[WORDS * d + 4]!
      for (let i = first; i < first + count; i++) {
        this.#childOf(d, i)
        if (i > first) {
          const [w, prev] = [WORDS * i, WORDS * (i - 1)]
          const order = compareBytes(
            this.bytes,
            this.#strings + e[prev]!,
            e[prev + 1]! & 0xffff,
            this.#strings + e[w]!,
            e[w + 1]! & 0xffff,
          )
          if (order >= 0) throw bad(i, 'siblings are not sorted and unique')
        }
      }
      names = Array.from({ length: count }, (_, k) => this.#name(first + k))
      this.#listings.set(d, names)
    }
    return names
  }

  lookup(path: string): FsNode | undefined {
    let node = this.node(1)
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue
      if (node === undefined || node.type !== 'directory') return undefined
      node = this.child(node, part)
    }
    return node
  }

  /** Record `i` as a child of directory record `d` (ranges of two directories never overlap). */
  #childOf(d: number, i: number): FsNode {
    if (this.#words[WORDS * i + 2] !== d) throw bad(i, 'not a child of its parent')
    return this.node(i + 1)!
  }

  #at(i: number): number {
    return this.#entries + ENTRY * i
  }

  #name(i: number): string {
    const at = this.#at(i)
    return this.#string(this.bytes.readUInt32LE(at), this.bytes.readUInt16LE(at + 4))
  }

  #string(offset: number, length: number): string {
    return this.bytes.toString('utf8', this.#strings + offset, this.#strings + offset + length)
  }

  /** The record as an FsNode, checked first; a hard link's node is its group's first record. */
  #read(i: number): FsNode {
    checkRecord(i, this.bytes, this.#words, this.#h, this.#xattrs, this.#strings, this.blobs)
    const b = this.bytes
    const at = this.#at(i)
    const type = TYPES[b.readUInt8(at + 6)]!
    const parent = b.readUInt32LE(at + 8)
    const name = this.#name(i)
    const parentPath = i === 0 ? '' : this.node(parent + 1)!.path
    const size = Number(b.readBigUInt64LE(at + 40))
    const ref = Number(b.readBigUInt64LE(at + 64))
    const xattrs = new Map<string, Buffer>()
    const first = b.readUInt32LE(at + 72)
    for (let x = 0, n = b.readUInt32LE(at + 76); x < n; x++) {
      const r = this.#xattrs + XATTR * (first + x)
      const value = this.#strings + b.readUInt32LE(r + 8)
      xattrs.set(
        this.#string(b.readUInt32LE(r), b.readUInt32LE(r + 4)),
        Buffer.from(b.subarray(value, value + b.readUInt32LE(r + 12))),
      )
    }
    const device = type === 'char' || type === 'block'
    return {
      path: i === 0 ? '' : parentPath === '' ? name : `${parentPath}/${name}`,
      type,
      mode: b.readUInt32LE(at + 20),
      uid: b.readUInt32LE(at + 24),
      gid: b.readUInt32LE(at + 28),
      size: type === 'file' ? size : 0,
      mtime: Number(b.readBigInt64LE(at + 48)),
      mtimeNsec: b.readUInt32LE(at + 56),
      linkTarget: type === 'symlink' ? this.#string(ref, size) : '',
      devMajor: device ? Math.floor(ref / 2 ** 32) : 0,
      devMinor: device ? ref % 2 ** 32 : 0,
      xattrs: xattrs.size > 0 ? xattrs : NO_XATTRS,
      blob: b.readInt32LE(at + 60),
      offset: type === 'file' ? ref : 0,
      hardlinkGroup: b.readUInt32LE(at + 80),
      ino: b.readUInt32LE(at + 36),
      nlink: b.readUInt32LE(at + 32),
    }
  }
}

const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map()

interface Header {
  codec: CodecName
  entries: number
  blobs: number
  frames: number
  xattrs: number
  strings: number
}

function readHeader(b: Buffer): Header {
  if (b.length < HEADER || !b.subarray(0, 8).equals(MAGIC))
    throw new FormatError('INDEX_INVALID', 'not a binary index (magic)')
  if (b.readUInt32LE(8) !== 1)
    throw new FormatError('INDEX_INVALID', 'unknown binary index version')
  const codec = CODECS[b.readUInt32LE(12)]
  if (codec === undefined) throw new FormatError('INDEX_INVALID', 'unknown codec')
  const h = {
    codec,
    entries: b.readUInt32LE(16),
    blobs: b.readUInt32LE(20),
    frames: b.readUInt32LE(24),
    xattrs: b.readUInt32LE(28),
    strings: Number(b.readBigUInt64LE(32)),
  }
  if (h.entries < 1 || h.entries > BINARY_INDEX_LIMITS.maxEntries)
    throw new FormatError('INDEX_INVALID', `${h.entries} entries`)
  const expected =
    HEADER + BLOB * h.blobs + FRAME * h.frames + ENTRY * h.entries + XATTR * h.xattrs + h.strings
  if (b.length !== expected)
    throw new FormatError(
      'INDEX_INVALID',
      `binary index is ${b.length} bytes, its header says ${expected}`,
    )
  return h
}

function readBlobs(b: Buffer, count: number, frameCount: number, framesAt: number): FsBlob[] {
  const blobs: FsBlob[] = []
  let next = 0
  for (let i = 0; i < count; i++) {
    const at = HEADER + BLOB * i
    const first = b.readUInt32LE(at + 88)
    const n = b.readUInt32LE(at + 92)
    if (first !== next || first + n > frameCount)
      throw new FormatError('INDEX_OUT_OF_BOUNDS', `blob ${i}: frames ${first}+${n} out of order`)
    next = first + n
    const frames: Frame[] = []
    let coff = 0
    let uoff = 0
    for (let f = first; f < first + n; f++) {
      const r = framesAt + FRAME * f
      const frame = {
        coff: Number(b.readBigUInt64LE(r)),
        uoff: Number(b.readBigUInt64LE(r + 8)),
        clen: b.readUInt32LE(r + 16),
        ulen: b.readUInt32LE(r + 20),
        digest: `sha256:${b.toString('hex', r + 24, r + 56)}` as Digest,
      }
      if (frame.coff !== coff || frame.uoff !== uoff || frame.clen < 1 || frame.ulen < 1)
        throw new FormatError(
          'INDEX_OUT_OF_BOUNDS',
          `blob ${i}: frame ${f - first} is not contiguous`,
        )
      coff += frame.clen
      uoff += frame.ulen
      frames.push(frame)
    }
    const blob: FsBlob = {
      digest: `sha256:${b.toString('hex', at, at + 32)}` as Digest,
      diffId: `sha256:${b.toString('hex', at + 32, at + 64)}` as Digest,
      size: Number(b.readBigUInt64LE(at + 64)),
      tarSize: Number(b.readBigUInt64LE(at + 72)),
      prefetchEnd: Number(b.readBigUInt64LE(at + 80)),
      frames,
    }
    if (coff !== blob.size || uoff !== blob.tarSize)
      throw new FormatError('INDEX_OUT_OF_BOUNDS', `blob ${i}: frames do not cover the blob`)
    if (blob.prefetchEnd !== 0 && !frames.some((f) => f.coff + f.clen === blob.prefetchEnd))
      throw new FormatError('INDEX_OUT_OF_BOUNDS', `blob ${i}: prefetchEnd is not a frame boundary`)
    blobs.push(blob)
  }
  if (next !== frameCount) throw new FormatError('INDEX_OUT_OF_BOUNDS', 'frames belong to no blob')
  return blobs
}

const WORDS = ENTRY / 4
const bad = (i: number, what: string) => new FormatError('INDEX_INVALID', `entry ${i}: ${what}`)

/**
 * Checks record `i` against the tree's rules, so that nothing read from it can point outside the
 * index or make a cycle: the root first, the entry inside its parent's child range and its parent
 * a directory that comes before it, its name one non-empty component, its children after it,
 * strings, xattrs and content inside their sections and blobs, a hard link pointing at an earlier
 * regular file. Siblings' order is checked when a directory is listed (BinaryIndex.children).
 */
function checkRecord(
  i: number,
  b: Buffer,
  e: Uint32Array,
  h: Header,
  xattrs: number,
  strings: number,
  blobs: readonly FsBlob[],
): void {
  const inStrings = (off: number, len: number) => off + len <= h.strings
  const u64 = (w: number) => e[w]! + e[w + 1]! * 2 ** 32
  const w = WORDS * i
  const nameOff = e[w]!
  const nameLen = e[w + 1]! & 0xffff
  const type = TYPES[(e[w + 1]! >>> 16) & 0xff]
  const parent = e[w + 2]!
  const first = e[w + 3]!
  const count = e[w + 4]!
  const ino = e[w + 9]!
  const size = u64(w + 10)
  const blob = e[w + 15]! | 0
  const ref = u64(w + 16)
  if (type === undefined) throw bad(i, 'unknown type')
  if (e[w + 5]! > 0o7777) throw bad(i, 'bad mode')
  if (!inStrings(nameOff, nameLen)) throw bad(i, 'name outside the string table')
  if (i === 0) {
    if (type !== 'directory' || nameLen !== 0 || parent !== 0)
      throw bad(i, 'the root is not a directory')
  } else {
    if (parent >= i) throw bad(i, 'its parent does not come before it')
    const p = WORDS * parent
    const pFirst = e[p + 3]!
    if (((e[p + 1]! >>> 16) & 0xff) !== 1 || i < pFirst || i >= pFirst + e[p + 4]!)
      throw bad(i, 'not a child of its parent')
    checkName(b, strings + nameOff, nameLen, i)
  }
  if (type === 'directory') {
    if (count > 0 && (first <= i || first + count > h.entries))
      throw bad(i, 'children out of range')
  } else if (count !== 0) throw bad(i, 'only directories have children')
  if (ino !== i + 1) {
    const t = WORDS * (ino - 1)
    if (
      ino < 1 ||
      ino > i ||
      type !== 'file' ||
      ((e[t + 1]! >>> 16) & 0xff) !== 0 ||
      e[t + 9] !== ino
    )
      throw bad(i, 'hard link to no earlier regular file')
  }
  if (type === 'file' && size > 0) {
    const tar = blobs[blob]?.tarSize
    if (tar === undefined || ref + size > tar) throw bad(i, 'content outside its blob')
  } else if (blob !== -1) throw bad(i, 'entry without content names a blob')
  else if (type === 'symlink' && (size === 0 || size > 4096 || !inStrings(ref, size)))
    throw bad(i, 'bad symlink target')
  else if (type !== 'file' && type !== 'symlink' && size !== 0)
    throw bad(i, 'only files have a size')
  const xFirst = e[w + 18]!
  const xCount = e[w + 19]!
  if (xFirst + xCount > h.xattrs) throw bad(i, 'xattrs out of range')
  for (let x = xFirst; x < xFirst + xCount; x++) {
    const r = xattrs + XATTR * x
    if (
      !inStrings(b.readUInt32LE(r), b.readUInt32LE(r + 4)) ||
      !inStrings(b.readUInt32LE(r + 8), b.readUInt32LE(r + 12))
    )
      throw bad(i, 'xattr outside the string table')
  }
}

/** `count` little-endian 32-bit words of `b` from `at` (a copy when `at` is not 4-byte aligned). */
function words(b: Buffer, at: number, count: number): Uint32Array {
  const start = b.byteOffset + at
  if (start % 4 === 0) return new Uint32Array(b.buffer, start, count)
  const copy = new Uint32Array(count)
  Buffer.from(copy.buffer).set(b.subarray(at, at + 4 * count))
  return copy
}

/** Byte order of two names in `b` (names are short: a loop beats a native call per pair). */
function compareBytes(b: Buffer, a: number, aLen: number, c: number, cLen: number): number {
  const n = Math.min(aLen, cLen)
  for (let k = 0; k < n; k++) {
    const d = b[a + k]! - b[c + k]!
    if (d !== 0) return d
  }
  return aLen - cLen
}

/** One path component: 1-255 bytes, no `/` or NUL, not `.` or `..`. */
function checkName(b: Buffer, at: number, len: number, i: number): void {
  if (len === 0 || len > 255) throw new FormatError('INDEX_INVALID', `entry ${i}: bad name length`)
  for (let k = at; k < at + len; k++) {
    if (b[k] === 0x2f || b[k] === 0)
      throw new FormatError('INDEX_INVALID', `entry ${i}: name contains '/' or NUL`)
  }
  if ((len === 1 && b[at] === 0x2e) || (len === 2 && b[at] === 0x2e && b[at + 1] === 0x2e))
    throw new FormatError('INDEX_INVALID', `entry ${i}: name is . or ..`)
}

function writeU64(out: Buffer, at: number, value: number): void {
  out.writeBigUInt64LE(BigInt(value), at)
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

function parentPath(path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 ? '' : path.slice(0, i)
}
