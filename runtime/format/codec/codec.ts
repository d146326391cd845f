import { createGzipCodec } from './gzip.ts'
import { createZstdCodec } from './zstd.ts'

/** The compression of a streaming blob's frames, recorded in the index. */
export type CodecName = 'zstd' | 'gzip'

/**
 * One-shot compression of a frame. Each `encode` output is an independent unit (a zstd frame or
 * a gzip member) so frames decode alone and their concatenation decodes as one stream.
 */
export interface Codec {
  readonly name: CodecName
  encode(data: Uint8Array): Buffer
  /**
   * Decodes one unit whose uncompressed length is known; fails (`FRAME_SIZE_MISMATCH` or
   * `FRAME_DECODE_FAILED`) rather than allocate or return anything but exactly `length` bytes.
   */
  decode(data: Uint8Array, length: number): Buffer
}

/** zstd level 3 by default: see README.md "Why" for the measured ratio/speed trade-off. */
export const DEFAULT_LEVEL: Record<CodecName, number> = { zstd: 3, gzip: 6 }

export function createCodec(name: CodecName, level = DEFAULT_LEVEL[name]): Codec {
  return name === 'zstd' ? createZstdCodec(level) : createGzipCodec(level)
}

export function isCodecName(value: unknown): value is CodecName {
  return value === 'zstd' || value === 'gzip'
}
