import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { constants, createGzip } from 'node:zlib'
import { CompressStream } from 'zstd-napi'
import { emptyHeader } from '../../runtime/format/tar/header.ts'
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from '../../runtime/format/tar/writer.ts'

export type BombCompression = 'gzip' | 'zstd'

/** A compressed layer and the DiffID (sha256 of its tar) an image config must name for it. */
export interface BombLayer {
  blob: Buffer
  diffId: string
  compression: BombCompression
  /** Length of the uncompressed tar. */
  tarBytes: number
}

const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * A decompression bomb: a tar of one regular file of `bytes` zeros, compressed as it is
 * generated, 1 MiB at a time, so a 10 GiB layer costs this process a few MB. gzip (Z_RLE: the
 * deflate limit of about 1:1030, six times faster on zeros than the default strategy) turns 2 GiB
 * into about 2 MB; zstd level 3 into about 66 KB. `zstdWindowLog` sets the window the frame
 * declares (and a decoder must allocate): level 3 declares 2 MiB.
 */
export async function buildZeroBomb(
  bytes: number,
  compression: BombCompression,
  options: { zstdWindowLog?: number } = {},
): Promise<BombLayer> {
  const hash = createHash('sha256')
  let tarBytes = 0
  async function* tar(): AsyncGenerator<Buffer> {
    for (const part of zeroTar(bytes)) {
      hash.update(part)
      tarBytes += part.length
      yield part
    }
  }
  const parts: Buffer[] = []
  await pipeline(
    Readable.from(tar(), { objectMode: false }),
    compression === 'gzip'
      ? createGzip({ level: 9, strategy: constants.Z_RLE })
      : new CompressStream({ compressionLevel: 3, windowLog: options.zstdWindowLog }),
    async (compressed: AsyncIterable<Buffer>) => {
      for await (const chunk of compressed) parts.push(chunk)
    },
  )
  return {
    blob: Buffer.concat(parts),
    diffId: `sha256:${hash.digest('hex')}`,
    compression,
    tarBytes,
  }
}

/** The tar: a header (with a PAX size from 8 GiB on), the zeros, padding, the end blocks. */
function* zeroTar(bytes: number): Generator<Buffer> {
  yield encodeTarHeader({ ...emptyHeader('zeros', 'file'), size: bytes })
  for (let left = bytes; left > 0; left -= ZEROS.length) {
    yield left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left)
  }
  yield Buffer.alloc(paddingFor(bytes))
  yield END_OF_ARCHIVE
}
