import { gunzipSync, gzipSync } from 'node:zlib'
import { FormatError } from '../errors.ts'
import type { Codec } from './codec.ts'

/**
 * gzip members (RFC 1952) via node:zlib: the fallback codec. A multi-member gzip file is one
 * valid gzip stream (`tar -tz` reads it). Node writes MTIME 0 and OS 3, so output is deterministic.
 */
export function createGzipCodec(level: number): Codec {
  return {
    name: 'gzip',
    encode(data) {
      return gzipSync(data, { level })
    },
    decode(data, length) {
      let out: Buffer
      try {
        // One byte more than expected is enough to tell "too long" without inflating a bomb.
        out = gunzipSync(data, { maxOutputLength: length + 1 })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new FormatError(
            'FRAME_SIZE_MISMATCH',
            `gzip member decodes to more than ${length} bytes`,
            { cause: err },
          )
        }
        throw new FormatError(
          'FRAME_DECODE_FAILED',
          `gzip member does not decode: ${(err as Error).message}`,
          { cause: err },
        )
      }
      if (out.length !== length)
        throw new FormatError(
          'FRAME_SIZE_MISMATCH',
          `gzip member decoded to ${out.length} bytes, expected ${length}`,
        )
      return out
    },
  }
}
