import { createRequire } from 'node:module'
import type * as Binding from 'zstd-napi/binding.js'
import { FormatError } from '../errors.ts'
import type { Codec } from './codec.ts'

// zstd-napi (statically linked libzstd 1.5.x, built from vendored source at install) is CommonJS.
const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof Binding

/**
 * zstd frames (RFC 8878) with the content size in the frame header. Encoding and decoding are
 * synchronous and reuse one context each; the output buffer of `decode` is exactly the recorded
 * length, so a frame cannot make us allocate more than the index says (decompression bombs).
 */
export function createZstdCodec(level: number): Codec {
  const cctx = new binding.CCtx()
  cctx.setParameter(binding.CParameter.compressionLevel, level)
  cctx.setParameter(binding.CParameter.contentSizeFlag, 1)
  const dctx = new binding.DCtx()
  return {
    name: 'zstd',
    encode(data) {
      const out = Buffer.allocUnsafe(binding.compressBound(data.length))
      const n = cctx.compress2(out, data)
      return out.subarray(0, n)
    },
    decode(data, length) {
      let declared: number | null
      try {
        declared = binding.getFrameContentSize(data)
      } catch (err) {
        throw new FormatError('FRAME_DECODE_FAILED', 'not a zstd frame', { cause: err })
      }
      if (declared !== null && declared !== length) {
        throw new FormatError(
          'FRAME_SIZE_MISMATCH',
          `zstd frame declares ${declared} bytes, the index says ${length}`,
        )
      }
      const out = Buffer.allocUnsafe(length)
      let n: number
      try {
        n = dctx.decompress(out, data)
      } catch (err) {
        throw new FormatError(
          'FRAME_DECODE_FAILED',
          `zstd frame does not decode: ${(err as Error).message}`,
          { cause: err },
        )
      }
      if (n !== length)
        throw new FormatError(
          'FRAME_SIZE_MISMATCH',
          `zstd frame decoded to ${n} bytes, expected ${length}`,
        )
      return out
    },
  }
}

export { binding as zstdBinding }
