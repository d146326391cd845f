import type { Digest } from '../oci/digest.ts'
import { createCodec, type Codec } from './codec/codec.ts'
import { FormatError } from './errors.ts'
import { FrameCache } from './frame-cache.ts'
import { decodeFrame, frameIndexAt, type Frame } from './frame.ts'
import type { FsEntry, FsIndex } from './fs-index.ts'
import { parentOf } from './image-index.ts'

/** A streaming blob as the range source is asked for it: its place in the index, digest and size. */
export interface BlobRef {
  index: number
  digest: Digest
  size: number
}

/** Where compressed bytes come from (an HTTP range client, a local cache, a file). */
export interface RangeSource {
  /** Exactly `length` bytes of the blob from `offset` (fewer or more is a truncated frame). */
  read(blob: BlobRef, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>
}

/** An entry with what a filesystem reports besides the index: inode number and link count. */
export interface FsNode extends FsEntry {
  ino: number
  nlink: number
}

/** The frames holding part of a file: frames `first..last` of blob `blob`. */
export interface FrameSpan {
  blob: number
  first: number
  last: number
}

export interface ImageReader {
  readonly index: FsIndex
  readonly codec: Codec
  /** The entry at `path` (`/a/b` or `a/b`), never following symlinks; undefined when absent. */
  lookup(path: string): FsNode | undefined
  /** Names in a directory, sorted. */
  readdir(path: string): string[]
  readlink(path: string): string
  /** Up to `length` bytes of a regular file from `offset` (fewer at its end), verified. */
  read(path: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>
  readEntry(entry: FsEntry, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>
  framesFor(entry: FsEntry, offset: number, length: number): FrameSpan | undefined
  close(): void
}

export interface OpenImageOptions {
  /** Bytes of decoded frames kept in memory (default 64 MiB). */
  cacheBytes?: number
}

/**
 * Opens an image through its (already verified) index. Metadata is answered from memory; content
 * reads fetch the frames they need, coalesced into one range per run of adjacent frames, verify
 * each frame's sha256 before decoding it, and slice. A frame that fails verification is an
 * error (`FRAME_*`), never data, and is not cached.
 */
export function openImage(index: FsIndex, source: RangeSource, options: OpenImageOptions = {}): ImageReader {
  const codec = createCodec(index.codec)
  const nodes = new Map<string, FsNode>()
  const children = new Map<string, string[]>()
  const groupIno = new Map<number, number>()
  const groupCount = new Map<number, number>()
  index.entries.forEach((e, i) => {
    const ino = e.hardlinkGroup > 0 ? groupIno.get(e.hardlinkGroup) ?? i + 1 : i + 1
    if (e.hardlinkGroup > 0) {
      groupIno.set(e.hardlinkGroup, ino)
      groupCount.set(e.hardlinkGroup, (groupCount.get(e.hardlinkGroup) ?? 0) + 1)
    }
    nodes.set(e.path, { ...e, ino, nlink: e.type === 'directory' ? 2 : 1 })
    if (e.type === 'directory') children.set(e.path, [])
    if (e.path !== '') children.get(parentOf(e.path))!.push(e.path.slice(e.path.lastIndexOf('/') + 1))
  })
  for (const node of nodes.values()) {
    if (node.hardlinkGroup > 0) node.nlink = groupCount.get(node.hardlinkGroup)!
    if (node.type === 'directory' && node.path !== '') nodes.get(parentOf(node.path))!.nlink++
  }
  const cache = new FrameCache(options.cacheBytes)
  const refs: BlobRef[] = index.blobs.map((b, i) => ({ index: i, digest: b.digest, size: b.size }))

  const get = (path: string, type?: FsEntry['type']): FsNode => {
    const node = lookup(path)
    if (node === undefined) throw new FormatError('ENTRY_NOT_FOUND', 'no such entry', { entry: path })
    if (type !== undefined && node.type !== type) throw new FormatError('ENTRY_WRONG_TYPE', `not a ${type}`, { entry: path })
    return node
  }
  const lookup = (path: string): FsNode | undefined => nodes.get(canonical(path))

  const framesFor = (entry: FsEntry, offset: number, length: number): FrameSpan | undefined => {
    const end = Math.min(entry.size, offset + length)
    if (entry.blob < 0 || offset >= end || offset < 0) return undefined
    const frames = index.blobs[entry.blob]!.frames
    const first = frameIndexAt(frames, entry.offset + offset)
    const last = frameIndexAt(frames, entry.offset + end - 1)
    if (first < 0 || last < 0) throw new FormatError('INDEX_OUT_OF_BOUNDS', 'content is not covered by frames', { entry: entry.path })
    return { blob: entry.blob, first, last }
  }

  const fetchRun = (blob: number, first: number, last: number, signal?: AbortSignal): Promise<Buffer>[] => {
    const frames = index.blobs[blob]!.frames
    const start = frames[first]!.coff
    const length = frames[last]!.coff + frames[last]!.clen - start
    const bytes = source.read(refs[blob]!, start, length, signal).then((b) => {
      if (b.length !== length) throw new FormatError('FRAME_TRUNCATED', `range of blob ${blob} at ${start} returned ${b.length} bytes, expected ${length}`)
      return b
    })
    const out: Promise<Buffer>[] = []
    for (let i = first; i <= last; i++) {
      const f = frames[i]!
      out.push(cache.track(`${blob}:${i}`, bytes.then((b) => decodeFrame(codec, b.subarray(f.coff - start, f.coff - start + f.clen), f))))
    }
    return out
  }

  const readEntry = async (entry: FsEntry, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> => {
    const span = framesFor(entry, offset, length)
    if (span === undefined) return Buffer.alloc(0)
    const parts: (Buffer | Promise<Buffer>)[] = []
    let runStart = -1
    const flush = (i: number) => {
      if (runStart >= 0) parts.push(...fetchRun(span.blob, runStart, i - 1, signal))
      runStart = -1
    }
    for (let i = span.first; i <= span.last; i++) {
      const hit = cache.get(`${span.blob}:${i}`)
      if (hit === undefined) {
        if (runStart < 0) runStart = i
        continue
      }
      flush(i)
      parts.push(hit)
    }
    flush(span.last + 1)
    const decoded = await Promise.all(parts)
    return slice(index.blobs[span.blob]!.frames, span.first, decoded, entry.offset + offset, Math.min(length, entry.size - offset))
  }

  return {
    index,
    codec,
    lookup,
    readdir: (path) => [...(children.get(get(path, 'directory').path) ?? [])],
    readlink: (path) => get(path, 'symlink').linkTarget,
    read: async (path, offset, length, signal) => readEntry(get(path, 'file'), offset, length, signal),
    readEntry,
    framesFor,
    close: () => cache.clear(),
  }
}

/** `length` bytes at tar offset `start`, out of consecutive decoded frames beginning at `first`. */
function slice(frames: readonly Frame[], first: number, decoded: Buffer[], start: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  let filled = 0
  for (let k = 0; k < decoded.length && filled < length; k++) {
    const f = frames[first + k]!
    const from = Math.max(0, start + filled - f.uoff)
    filled += decoded[k]!.copy(out, filled, from, Math.min(f.ulen, from + length - filled))
  }
  return out
}

function canonical(path: string): string {
  return path
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/')
}
