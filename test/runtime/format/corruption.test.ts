import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { createCodec } from '../../../runtime/format/codec/codec.ts'
import type { FsIndex } from '../../../runtime/format/fs-index.ts'
import { buildFsIndex } from '../../../runtime/format/image-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../../runtime/format/index-codec.ts'
import { writeLayer } from '../../../runtime/format/layer-writer.ts'
import { openImage } from '../../../runtime/format/reader.ts'
import { buildTar, chunked } from '../../support/tar-builder.ts'

const content = randomBytes(3 * 2 ** 20) // incompressible: three 1 MiB frames, all different

async function converted() {
  const sink = memorySink()
  const toc = await writeLayer(
    chunked(
      buildTar([
        { name: 'f', content },
        { name: 'g', content: 'small' },
      ]),
    ),
    sink,
    { compression: 'none' },
  )
  const blob = sink.bytes()
  const index = buildFsIndex([toc])
  return { index, blob, bytes: encodeFsIndex(index) }
}

/** Reads all of `f` through an index and a blob as given; returns the error code or 'data'. */
async function readAll(index: FsIndex, blob: Buffer): Promise<string> {
  const reader = openImage(index, {
    read: async (_b, offset, length) => blob.subarray(offset, offset + length),
  })
  try {
    const data = await reader.read('f', 0, content.length)
    return data.equals(content) ? 'data' : 'WRONG DATA'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

const clone = (index: FsIndex): FsIndex => parseFsIndex(encodeFsIndex(index))

describe('corruption is detected, never returned as data', () => {
  it('reads the intact image', async () => {
    const { index, blob } = await converted()
    expect(await readAll(index, blob)).toBe('data')
  })

  // Damage to the streaming blob, as storage or a proxy could cause it.
  const blobCases: [string, (blob: Buffer, index: FsIndex) => Buffer, string][] = [
    // one bit flipped in the middle of frame 1
    [
      'a flipped bit in a frame',
      (b, i) => {
        const c = Buffer.from(b)
        const f = i.blobs[0]!.frames[1]!
        c[f.coff + (f.clen >> 1)]! ^= 0x10
        return c
      },
      'FRAME_DIGEST_MISMATCH',
    ],
    // the blob ends inside frame 2
    [
      'a truncated frame',
      (b, i) => b.subarray(0, i.blobs[0]!.frames[2]!.coff + 100),
      'FRAME_TRUNCATED',
    ],
    // frames 0 and 1 swapped (same lengths: incompressible content): each is valid zstd on its own
    [
      'a swapped frame',
      (b, i) => {
        const [f0, f1] = i.blobs[0]!.frames
        const c = Buffer.from(b)
        b.copy(c, f0!.coff, f1!.coff, f1!.coff + f1!.clen)
        b.copy(c, f0!.coff + f1!.clen, f0!.coff, f0!.coff + f0!.clen)
        return c
      },
      'FRAME_DIGEST_MISMATCH',
    ],
    // a frame replaced by a valid zstd frame of other data
    [
      'a foreign frame',
      (b, i) => {
        const f = i.blobs[0]!.frames[1]!
        const c = Buffer.from(b)
        createCodec('zstd').encode(Buffer.alloc(f.ulen, 1)).copy(c, f.coff)
        return c
      },
      'FRAME_DIGEST_MISMATCH',
    ],
  ]
  it.each(blobCases)('detects %s', async (_what, damage, code) => {
    const { index, blob } = await converted()
    expect(await readAll(index, damage(blob, index))).toBe(code)
  })

  it('detects a source that returns more bytes than asked', async () => {
    const { index, blob } = await converted()
    const reader = openImage(index, {
      read: async (_b, offset, length) => blob.subarray(offset, offset + length + 1),
    })
    await expect(reader.read('f', 0, 10)).rejects.toMatchObject({ code: 'FRAME_TRUNCATED' })
  })

  it('detects a frame that decodes to a length other than the index says', async () => {
    const { index, blob } = await converted()
    const lying = clone(index)
    // frame 0 claims one byte more (digest intact: it covers the compressed bytes); tar sizes follow.
    lying.blobs[0]!.frames[0]!.ulen += 1
    lying.blobs[0]!.tarSize += 1
    expect(await readAll(parseFsIndex(encodeFsIndex(lying)), blob)).toBe('FRAME_SIZE_MISMATCH')
    const codec = createCodec('gzip')
    expect(() => codec.decode(codec.encode(Buffer.alloc(100)), 99)).toThrow(
      expect.objectContaining({ code: 'FRAME_SIZE_MISMATCH' }),
    )
    expect(() => codec.decode(codec.encode(Buffer.alloc(100)), 101)).toThrow(
      expect.objectContaining({ code: 'FRAME_SIZE_MISMATCH' }),
    )
    expect(() => createCodec('zstd').decode(Buffer.from('garbage!'), 8)).toThrow(
      expect.objectContaining({ code: 'FRAME_DECODE_FAILED' }),
    )
  })

  it('refuses an index blob whose digest is not the descriptor’s', async () => {
    const { bytes } = await converted()
    expect(() => parseFsIndex(bytes, { digest: sha256Of('something else') })).toThrow(
      expect.objectContaining({ code: 'INDEX_DIGEST_MISMATCH' }),
    )
    expect(parseFsIndex(bytes, { digest: sha256Of(bytes) }).entries).toHaveLength(3)
  })

  // Indexes that would send a reader outside a blob, or to frames that do not exist.
  const indexCases: [string, (i: FsIndex) => void, string][] = [
    // a file whose content would end past the blob's tar stream
    [
      'a file past the end of its blob',
      (i) => {
        i.entries.find((e) => e.path === 'g')!.offset = i.blobs[0]!.tarSize
      },
      'INDEX_OUT_OF_BOUNDS',
    ],
    // a file naming a blob that does not exist
    [
      'a file in a missing blob',
      (i) => {
        i.entries.find((e) => e.path === 'g')!.blob = 3
      },
      'INDEX_OUT_OF_BOUNDS',
    ],
    // frames that claim more compressed bytes than the blob has
    [
      'frames longer than the blob',
      (i) => {
        i.blobs[0]!.frames[1]!.clen += 10
      },
      'INDEX_OUT_OF_BOUNDS',
    ],
    // frames that leave part of the tar stream uncovered
    [
      'a missing frame',
      (i) => {
        const f = i.blobs[0]!.frames.pop()!
        i.blobs[0]!.size -= f.clen
      },
      'INDEX_OUT_OF_BOUNDS',
    ],
    // a prefetch end inside a frame
    [
      'a prefetch end inside a frame',
      (i) => {
        i.blobs[0]!.prefetchEnd = 5
      },
      'INDEX_OUT_OF_BOUNDS',
    ],
    // an entry whose parent is not in the index
    [
      'an orphan entry',
      (i) => {
        i.entries.push({ ...i.entries[1]!, path: 'nowhere/f' })
      },
      'INDEX_INVALID',
    ],
    // a path that climbs out
    [
      'a path with ..',
      (i) => {
        i.entries.push({ ...i.entries[1]!, path: 'z/..' })
      },
      'INDEX_INVALID',
    ],
  ]
  it.each(indexCases)('refuses an index with %s', async (_what, damage, code) => {
    const { index } = await converted()
    const bad = clone(index)
    damage(bad)
    expect(() => parseFsIndex(encodeFsIndex(bad))).toThrow(expect.objectContaining({ code }))
  })

  it.each([
    ['not zstd', Buffer.from('{"version":1}')],
    ['not JSON', createCodec('zstd').encode(Buffer.from('{"version":'))],
    [
      'the wrong schema',
      createCodec('zstd').encode(
        Buffer.from('{"version":2,"codec":"zstd","blobs":[],"entries":[]}'),
      ),
    ],
  ])('refuses an index blob that is %s', (_what, bytes) => {
    expect(() => parseFsIndex(bytes)).toThrow(expect.objectContaining({ code: 'INDEX_INVALID' }))
  })
})
