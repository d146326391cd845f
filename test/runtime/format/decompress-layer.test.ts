import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import { gzipSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { CompressStream, compress } from 'zstd-napi'
import { decompressLayer } from '../../../runtime/format/codec/decompress-layer.ts'
import { ExpansionBudget } from '../../../runtime/format/expansion-budget.ts'
import { chunked } from '../../support/tar-builder.ts'
import { buildZeroBomb, type BombCompression, type BombLayer } from '../../support/bomb-layers.ts'

const MiB = 2 ** 20
const codecs: BombCompression[] = ['zstd', 'gzip']

/** A source that counts the compressed bytes taken from it. */
function counted(blob: Uint8Array, chunkSize: number) {
  const source = { pulled: 0, chunks: chunked(blob, chunkSize) }
  return Object.assign(source, {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of source.chunks) {
        source.pulled += chunk.length
        yield chunk
      }
    },
  })
}

/** Everything a layer decompresses to (chunks copied: a chunk lives until the next pull). */
async function drain(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

async function codeOf(stream: AsyncIterable<Uint8Array>): Promise<string> {
  try {
    await drain(stream)
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

describe('decompressLayer against bombs', () => {
  // 512 MiB of zeros in a tar: about 16 KB of zstd, 500 KB of gzip.
  const bombs = new Map<BombCompression, BombLayer>()
  beforeAll(async () => {
    for (const c of codecs) bombs.set(c, await buildZeroBomb(512 * MiB, c))
  })

  it.each(codecs)(
    'holds at most a few MiB of %s output ahead of a reader that stops after one chunk',
    async (compression) => {
      const { blob } = bombs.get(compression)!
      const before = process.memoryUsage().arrayBuffers
      // The whole bomb in one chunk: a decoder that does not wait for its reader decodes all of it.
      const layer = decompressLayer(chunked(blob, blob.length), compression)
      const first = await layer.next()
      expect(first.done).toBe(false)
      // Event-loop turns in which a decoder running ahead (or on the threadpool) would go on.
      for (let i = 0; i < 20; i++) await turn()
      const ahead = process.memoryUsage().arrayBuffers - before
      expect(ahead).toBeLessThan(8 * MiB)
      await layer.return(undefined)
    },
  )

  it.each(codecs)(
    'stops a %s bomb at the layer limit with LAYER_UNCOMPRESSED_TOO_LARGE, reading little of it',
    async (compression) => {
      const { blob } = bombs.get(compression)!
      // 1000 small chunks: how many were taken shows how far the decoder went.
      const source = counted(blob, Math.ceil(blob.length / 1000))
      const meter = new ExpansionBudget({ maxLayerBytes: 8 * MiB }).meter()
      expect(await codeOf(decompressLayer(source, compression, { meter }))).toBe(
        'LAYER_UNCOMPRESSED_TOO_LARGE',
      )
      // Exactly the limit was handed out; at most one chunk (128 KiB zstd, 256 KiB gzip) past it
      // was decoded, from 8/512 of the input plus what node:stream reads ahead (16 KiB).
      expect(meter.bytes).toBeGreaterThan(8 * MiB)
      expect(meter.bytes).toBeLessThanOrEqual(8 * MiB + 256 * 1024)
      expect(source.pulled).toBeLessThan(blob.length / 10)
    },
  )
})

describe('decompressLayer output', () => {
  const data = randomBytes(300_000)
  const zeros = Buffer.alloc(4 * 128 * 1024) // exactly four zstd blocks: the last fills the buffer
  // Streams that must decode to exactly `expected`, each in chunks of 7 919 bytes and in one.
  const good: [string, 'zstd' | 'gzip', Buffer, Buffer][] = [
    // one zstd frame
    ['a zstd frame', 'zstd', compress(data), data],
    // frames concatenated (what a parallel compressor writes)
    [
      'two zstd frames',
      'zstd',
      Buffer.concat([compress(data.subarray(0, 1000)), compress(data.subarray(1000))]),
      data,
    ],
    // a skippable frame (magic 0x184D2A50, 4-byte length) between two frames is ignored
    [
      'a skippable frame between zstd frames',
      'zstd',
      Buffer.concat([
        compress(data.subarray(0, 1000)),
        Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]),
        compress(data.subarray(1000)),
      ]),
      data,
    ],
    // output a multiple of the decoder's buffer: the frame ends exactly when the buffer is full
    ['zstd output that ends on a full buffer', 'zstd', compress(zeros), zeros],
    // several gzip members are one gzip stream (RFC 1952 §2.2)
    [
      'two gzip members',
      'gzip',
      Buffer.concat([gzipSync(data.subarray(0, 1000)), gzipSync(data.subarray(1000))]),
      data,
    ],
  ]
  it.each(good)('decodes %s', async (_what, compression, blob, expected) => {
    expect((await drain(decompressLayer(chunked(blob), compression))).equals(expected)).toBe(true)
    const whole = decompressLayer(chunked(blob, blob.length), compression)
    expect((await drain(whole)).equals(expected)).toBe(true)
  })

  it('passes an uncompressed layer through, counted by the meter', async () => {
    const meter = new ExpansionBudget().meter()
    const out = await drain(decompressLayer(chunked(data), 'none', { meter }))
    expect(out.equals(data)).toBe(true)
    expect(meter.bytes).toBe(data.length)
  })

  const frame = compress(data, { checksumFlag: true }) // as the zstd CLI writes it
  const flipped = Buffer.from(frame)
  flipped[Math.floor(frame.length / 2)]! ^= 0xff
  const gz = gzipSync(data)
  // Input that must fail with LAYER_DECOMPRESS_FAILED (a user fault: the layer is bad).
  const bad: [string, 'zstd' | 'gzip', Buffer][] = [
    // not zstd at all (no magic number)
    ['random bytes as zstd', 'zstd', randomBytes(4096)],
    // a byte changed inside the block: the content no longer matches the frame's checksum
    ['a corrupted zstd frame', 'zstd', flipped],
    // the stream ends inside a frame
    ['a truncated zstd frame', 'zstd', frame.subarray(0, frame.length - 100)],
    // not gzip (bad magic)
    ['random bytes as gzip', 'gzip', randomBytes(4096)],
    // the stream ends inside a member
    ['a truncated gzip member', 'gzip', gz.subarray(0, gz.length - 100)],
  ]
  it.each(bad)('fails %s with LAYER_DECOMPRESS_FAILED', async (_what, compression, blob) => {
    expect(await codeOf(decompressLayer(chunked(blob), compression))).toBe(
      'LAYER_DECOMPRESS_FAILED',
    )
  })

  it('refuses a zstd frame that declares a 64 MiB window (zstd --long), saying why', async () => {
    // Streamed, so the size is unknown and the frame keeps the window (a one-shot compress of
    // 512 KiB would shrink it): decoding would make the decoder hold 64 MiB.
    const parts: Buffer[] = []
    const compressor = Readable.from([zeros]).pipe(new CompressStream({ windowLog: 26 }))
    for await (const chunk of compressor) parts.push(chunk as Buffer)
    await expect(drain(decompressLayer(chunked(Buffer.concat(parts)), 'zstd'))).rejects.toThrow(
      expect.objectContaining({
        code: 'LAYER_DECOMPRESS_FAILED',
        message: expect.stringMatching(/a frame declares a window over 33554432 bytes/),
      }),
    )
  })
})
