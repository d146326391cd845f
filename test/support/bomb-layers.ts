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

export interface BombOptions {
  /** The zstd window the frame declares (2^N bytes; a decoder must hold it): level 3 says 2^21. */
  zstdWindowLog?: number
}

const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * A decompression bomb: a tar of one regular file of `bytes` zeros, compressed as it is
 * generated, so a 10 GiB layer costs this process a few MB. gzip (Z_RLE: the deflate limit of
 * about 1:1030, six times faster on zeros than the default strategy) turns 2 GiB into about 2 MB;
 * zstd level 3 into about 66 KB.
 */
export function buildZeroBomb(
  bytes: number,
  compression: BombCompression,
  options: BombOptions = {},
): Promise<BombLayer> {
  return compressTar(zeroTar(bytes), compression, options)
}

/**
 * An entry bomb: a tar of `entries` empty files (`d/<n>`) under one directory, 512 bytes of
 * header each, which compress about 40 to 1: every entry costs a converter memory until the
 * image's index is written.
 */
export function buildEntryBomb(
  entries: number,
  compression: BombCompression,
  options: BombOptions = {},
): Promise<BombLayer> {
  return compressTar(emptyFilesTar(entries), compression, options)
}

async function compressTar(
  parts: Iterable<Buffer>,
  compression: BombCompression,
  options: BombOptions,
): Promise<BombLayer> {
  const hash = createHash('sha256')
  let tarBytes = 0
  async function* tar(): AsyncGenerator<Buffer> {
    for (const part of parts) {
      hash.update(part)
      tarBytes += part.length
      yield part
    }
  }
  const out: Buffer[] = []
  await pipeline(
    Readable.from(tar(), { objectMode: false }),
    compression === 'gzip'
      ? createGzip({ level: 9, strategy: constants.Z_RLE })
      : new CompressStream({ compressionLevel: 3, windowLog: options.zstdWindowLog }),
    async (compressed: AsyncIterable<Buffer>) => {
      for await (const chunk of compressed) out.push(chunk)
    },
  )
  const blob = Buffer.concat(out)
  return { blob, diffId: `sha256:${hash.digest('hex')}`, compression, tarBytes }
}

/** A header (with a PAX size from 8 GiB on), the zeros, padding, the end blocks. */
function* zeroTar(bytes: number): Generator<Buffer> {
  yield encodeTarHeader({ ...emptyHeader('zeros', 'file'), size: bytes })
  for (let left = bytes; left > 0; left -= ZEROS.length) {
    yield left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left)
  }
  yield Buffer.alloc(paddingFor(bytes))
  yield END_OF_ARCHIVE
}

/** `d/`, then `d/0` … `d/<entries - 2>` (entries in all), headers only, 1 MiB at a time. */
function* emptyFilesTar(entries: number): Generator<Buffer> {
  const batch: Buffer[] = [encodeTarHeader(emptyHeader('d', 'directory'))]
  for (let i = 0; i < entries - 1; i++) {
    batch.push(encodeTarHeader(emptyHeader(`d/${i}`, 'file')))
    if (batch.length === 2048) yield Buffer.concat(batch.splice(0))
  }
  yield Buffer.concat(batch)
  yield END_OF_ARCHIVE
}
