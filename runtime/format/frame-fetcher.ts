import type { Codec } from './codec/codec.ts'
import { FormatError } from './errors.ts'
import type { FrameCache } from './frame-cache.ts'
import { decodeFrame, frameIndexAt, type Frame } from './frame.ts'
import type { FsBlob, FsEntry, FsIndex } from './fs-index.ts'
import type { BlobRef, RangeSource } from './reader.ts'

/** The frames holding part of a file: frames `first..last` of blob `blob`. */
export interface FrameSpan {
  blob: number
  first: number
  last: number
}

/** The frame span holding bytes `[offset, offset+length)` of a file (clamped to its size). */
export function framesFor(
  index: { readonly blobs: readonly FsBlob[] },
  entry: FsEntry,
  offset: number,
  length: number,
): FrameSpan | undefined {
  const end = Math.min(entry.size, offset + length)
  if (entry.blob < 0 || offset < 0 || offset >= end) return undefined
  const frames = index.blobs[entry.blob]!.frames
  const first = frameIndexAt(frames, entry.offset + offset)
  const last = frameIndexAt(frames, entry.offset + end - 1)
  if (first < 0 || last < 0) {
    throw new FormatError('INDEX_OUT_OF_BOUNDS', 'content is not covered by frames', {
      entry: entry.path,
    })
  }
  return { blob: entry.blob, first, last }
}

/**
 * Reads file content through frames: frames already decoded (or being fetched) come from the
 * cache; each run of adjacent missing frames is one range read, and each frame is verified
 * (length, sha256) before it is decoded. Concurrent readers of a frame share its fetch, so one
 * caller's abort fails the others' read of that frame too (they retry).
 */
export class FrameFetcher {
  readonly #index: FsIndex
  readonly #codec: Codec
  readonly #source: RangeSource
  readonly #cache: FrameCache
  readonly #refs: BlobRef[]

  constructor(index: FsIndex, codec: Codec, source: RangeSource, cache: FrameCache) {
    this.#index = index
    this.#codec = codec
    this.#source = source
    this.#cache = cache
    this.#refs = index.blobs.map((b, i) => ({ index: i, digest: b.digest, size: b.size }))
  }

  async read(
    entry: FsEntry,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const span = framesFor(this.#index, entry, offset, length)
    if (span === undefined) return Buffer.alloc(0)
    const parts: (Buffer | Promise<Buffer>)[] = []
    let run = -1
    for (let i = span.first; i <= span.last + 1; i++) {
      const hit = i <= span.last ? this.#cache.get(`${span.blob}:${i}`) : undefined
      if (hit === undefined && i <= span.last) {
        if (run < 0) run = i
        continue
      }
      if (run >= 0) parts.push(...this.#fetchRun(span.blob, run, i - 1, signal))
      run = -1
      if (hit !== undefined) parts.push(hit)
    }
    const decoded = await Promise.all(parts)
    const frames = this.#index.blobs[span.blob]!.frames
    return slice(
      frames,
      span.first,
      decoded,
      entry.offset + offset,
      Math.min(length, entry.size - offset),
    )
  }

  #fetchRun(blob: number, first: number, last: number, signal?: AbortSignal): Promise<Buffer>[] {
    const frames = this.#index.blobs[blob]!.frames
    const start = frames[first]!.coff
    const length = frames[last]!.coff + frames[last]!.clen - start
    const bytes = this.#source.read(this.#refs[blob]!, start, length, signal).then((b) => {
      if (b.length === length) return b
      throw new FormatError(
        'FRAME_TRUNCATED',
        `blob ${blob} at ${start}: ${b.length} bytes, expected ${length}`,
      )
    })
    const out: Promise<Buffer>[] = []
    for (let i = first; i <= last; i++) {
      const f = frames[i]!
      const decoded = bytes.then((b) =>
        decodeFrame(this.#codec, b.subarray(f.coff - start, f.coff - start + f.clen), f),
      )
      out.push(this.#cache.track(`${blob}:${i}`, decoded))
    }
    return out
  }
}

/** `length` bytes at tar offset `start`, out of consecutive decoded frames beginning at `first`. */
function slice(
  frames: readonly Frame[],
  first: number,
  decoded: Buffer[],
  start: number,
  length: number,
): Buffer {
  const out = Buffer.allocUnsafe(length)
  let filled = 0
  for (let k = 0; k < decoded.length && filled < length; k++) {
    const f = frames[first + k]!
    const from = Math.max(0, start + filled - f.uoff)
    filled += decoded[k]!.copy(out, filled, from, Math.min(f.ulen, from + length - filled))
  }
  return out
}
