import type { LayerCompression } from '../../oci/media-types.ts'
import { FormatError, isFormatError } from '../errors.ts'
import { gunzipStream } from './gunzip-stream.ts'
import { zstdStream } from './zstd-stream.ts'

/** Counts uncompressed bytes as they are produced; throws to stop (ExpansionMeter). */
export interface ByteMeter {
  addBytes(bytes: number): void
}

export interface DecompressOptions {
  meter?: ByteMeter
}

const DECODERS = { gzip: gunzipStream, zstd: zstdStream }

/**
 * The uncompressed tar stream of an original layer (`tar`, `tar+gzip` with any number of members,
 * `tar+zstd` with any number of frames), produced only as it is read: memory stays bounded
 * whatever the compression ratio. A chunk is valid until the next one is pulled (the zstd decoder
 * reuses its buffer): copy what you keep. Each chunk is counted by `meter` before it is handed
 * out, so a limit stops the layer there and the rest is never decompressed. Decoding errors
 * become `LAYER_DECOMPRESS_FAILED`.
 */
export async function* decompressLayer(
  source: AsyncIterable<Uint8Array>,
  compression: LayerCompression,
  options: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  for await (const chunk of compression === 'none' ? source : decode(source, compression)) {
    options.meter?.addBytes(chunk.length)
    yield chunk
  }
}

async function* decode(
  source: AsyncIterable<Uint8Array>,
  compression: keyof typeof DECODERS,
): AsyncGenerator<Uint8Array> {
  try {
    yield* DECODERS[compression](source)
  } catch (err) {
    if (isFormatError(err)) throw err
    throw new FormatError(
      'LAYER_DECOMPRESS_FAILED',
      `the ${compression} layer does not decompress: ${(err as Error).message}`,
      { cause: err },
    )
  }
}
