import { sha256Of, type Digest } from '../oci/digest.ts'
import type { Codec } from './codec/codec.ts'
import { FormatError } from './errors.ts'

/**
 * One independently decompressible unit of a streaming blob.
 *
 *   blob:  | frame 0 | frame 1 | frame 2 | ...        compressed, back to back
 *           coff ────▶ clen
 *   tar:   | ulen 0        | ulen 1    | ulen 2 | ... their decoded bytes, back to back,
 *           uoff ────▶ ulen              form one tar stream
 *
 * `digest` is the sha256 of the *compressed* bytes `blob[coff, coff + clen)`: it is checked
 * before a frame is decoded, so corrupted or hostile bytes never reach the decompressor.
 */
export interface Frame {
  coff: number
  clen: number
  uoff: number
  ulen: number
  digest: Digest
}

/** Verifies a fetched frame (length, then digest) and decodes it to exactly `frame.ulen` bytes. */
export function decodeFrame(codec: Codec, bytes: Uint8Array, frame: Frame): Buffer {
  if (bytes.length !== frame.clen) {
    throw new FormatError(
      'FRAME_TRUNCATED',
      `frame at ${frame.coff} is ${bytes.length} bytes, expected ${frame.clen}`,
    )
  }
  const actual = sha256Of(bytes)
  if (actual !== frame.digest) {
    throw new FormatError(
      'FRAME_DIGEST_MISMATCH',
      `frame at ${frame.coff} has digest ${actual}, expected ${frame.digest}`,
    )
  }
  return codec.decode(bytes, frame.ulen)
}

/**
 * Verifies and decodes a run of consecutive frames of one blob, `bytes` starting at the first
 * frame's `coff`; one buffer per frame.
 */
export function decodeRun(codec: Codec, frames: readonly Frame[], bytes: Uint8Array): Buffer[] {
  const start = frames[0]!.coff
  return frames.map((f) =>
    decodeFrame(codec, bytes.subarray(f.coff - start, f.coff - start + f.clen), f),
  )
}

/** Index of the frame holding uncompressed offset `uoff` (frames sorted by uoff), or -1. */
export function frameIndexAt(frames: readonly Frame[], uoff: number): number {
  let lo = 0
  let hi = frames.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const f = frames[mid]!
    if (uoff < f.uoff) hi = mid - 1
    else if (uoff >= f.uoff + f.ulen) lo = mid + 1
    else return mid
  }
  return -1
}
