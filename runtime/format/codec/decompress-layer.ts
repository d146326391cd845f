import { Readable, type Transform } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { DecompressStream } from 'zstd-napi'
import type { LayerCompression } from '../../oci/media-types.ts'
import { FormatError, isFormatError } from '../errors.ts'

/**
 * The uncompressed tar stream of an original layer (`tar`, `tar+gzip` with any number of members,
 * `tar+zstd` with any number of frames). gunzip runs on libuv's threadpool, so it overlaps with
 * the JS work of the caller; zstd decoding is synchronous (zstd-napi streams run on the JS thread).
 * Decoding errors become `LAYER_DECOMPRESS_FAILED`.
 */
export async function* decompressLayer(
  source: AsyncIterable<Uint8Array>,
  compression: LayerCompression,
): AsyncGenerator<Uint8Array> {
  if (compression === 'none') {
    yield* source
    return
  }
  const transform: Transform =
    compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : new DecompressStream()
  const input = Readable.from(source, { objectMode: false })
  input.on('error', (err) => transform.destroy(err))
  input.pipe(transform)
  try {
    for await (const chunk of transform) yield chunk as Buffer
  } catch (err) {
    if (isFormatError(err)) throw err
    throw new FormatError(
      'LAYER_DECOMPRESS_FAILED',
      `the ${compression} layer does not decompress: ${(err as Error).message}`,
      { cause: err },
    )
  } finally {
    input.destroy()
    transform.destroy()
  }
}
