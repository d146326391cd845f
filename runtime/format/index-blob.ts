import { sha256Of, type Digest } from '../oci/digest.ts'
import { createZstdCodec, zstdBinding } from './codec/zstd.ts'
import { FormatError } from './errors.ts'

/**
 * The decoded bytes of an index blob (one zstd frame, JSON or binary): its digest checked first
 * (when given), then its size, then the size its frame declares, before anything is decoded.
 */
export function decodeIndexBlob(
  bytes: Uint8Array,
  limits: { maxCompressed: number; maxDecoded: number },
  expected: { digest?: Digest } = {},
): Buffer {
  if (expected.digest !== undefined && sha256Of(bytes) !== expected.digest) {
    throw new FormatError(
      'INDEX_DIGEST_MISMATCH',
      `index blob digest ${sha256Of(bytes)} does not match ${expected.digest}`,
    )
  }
  if (bytes.length > limits.maxCompressed)
    throw new FormatError('INDEX_TOO_LARGE', `index blob of ${bytes.length} bytes`)
  let declared: number | null
  try {
    declared = zstdBinding.getFrameContentSize(bytes)
  } catch (err) {
    throw new FormatError('INDEX_INVALID', 'index blob is not a zstd frame', { cause: err })
  }
  if (declared === null || declared > limits.maxDecoded)
    throw new FormatError('INDEX_TOO_LARGE', `index of ${declared ?? 'unknown'} bytes decoded`)
  try {
    return createZstdCodec(3).decode(bytes, declared)
  } catch (err) {
    throw new FormatError('INDEX_INVALID', 'index blob does not decode', { cause: err })
  }
}
