import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { compress } from 'zstd-napi'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { createCodec } from '../../../runtime/format/codec/codec.ts'
import { decodeFrame } from '../../../runtime/format/frame.ts'
import type { LayerToc } from '../../../runtime/format/layer-toc.ts'
import {
  DEFAULT_MIN_COLD_BYTES,
  writeLayer,
  type WriteLayerOptions,
} from '../../../runtime/format/layer-writer.ts'
import { buildTar, chunked, type TarSpec } from '../../support/tar-builder.ts'
import { tmpDir } from '../../support/tmp.ts'

const KiB = 1024
const small = (i: number): TarSpec => ({
  name: `dir/small-${i}`,
  content: randomBytes(3 * KiB).toString('hex'),
})

async function convert(
  tar: Buffer,
  options: Partial<WriteLayerOptions> = {},
): Promise<{ toc: LayerToc; blob: Buffer }> {
  const sink = memorySink()
  const toc = await writeLayer(() => chunked(tar), sink, {
    compression: 'none',
    groupBytes: 64 * KiB,
    splitBytes: 128 * KiB,
    ...options,
  })
  return { toc, blob: sink.bytes() }
}

/** The bytes of the blob's tar stream, decoded frame by frame with verification. */
function decodeAll(toc: LayerToc, blob: Buffer): Buffer {
  const codec = createCodec(toc.codec)
  return Buffer.concat(
    toc.frames.map((f) => decodeFrame(codec, blob.subarray(f.coff, f.coff + f.clen), f)),
  )
}

describe('writeLayer', () => {
  const big = randomBytes(300 * KiB)
  const specs: TarSpec[] = [
    { name: 'dir', type: 'directory', mode: 0o755 },
    ...Array.from({ length: 40 }, (_, i) => small(i)),
    { name: 'dir/big', content: big },
    { name: 'dir/after-big', content: 'tail' },
    { name: 'dir/link', type: 'hardlink', linkName: 'dir/big' },
  ]
  const tar = buildTar(specs)

  it('writes frames whose concatenated decoding is a tar that GNU tar lists and extracts like the original', async () => {
    const { toc, blob } = await convert(tar)
    expect(toc.blob.size).toBe(blob.length)
    expect(toc.blob.digest).toBe(`sha256:${createHash('sha256').update(blob).digest('hex')}`)
    expect(toc.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`)
    const dir = await tmpDir()
    writeFileSync(join(dir, 'blob'), blob)
    const listed = execFileSync('sh', ['-c', `zstd -d < ${dir}/blob | tar -t`])
      .toString()
      .trim()
      .split('\n')
    expect(listed).toEqual(['dir/', ...specs.slice(1).map((s) => s.name)])
    mkdirSync(join(dir, 'x'))
    execFileSync('sh', ['-c', `zstd -d < ${dir}/blob | tar -x -C ${dir}/x`])
    expect(readFileSync(join(dir, 'x/dir/big')).equals(big)).toBe(true)
    expect(readFileSync(join(dir, 'x/dir/small-7')).toString()).toBe(specs[8]!.content)
  })

  it('writes a multi-member gzip blob that tar -tz lists when the codec is gzip', async () => {
    const { toc, blob } = await convert(tar, { codec: 'gzip' })
    expect(toc.codec).toBe('gzip')
    expect(decodeAll(toc, blob).length).toBe(toc.tarSize)
    const listed = execFileSync('tar', ['-tz'], { input: blob }).toString().trim().split('\n')
    expect(listed).toHaveLength(specs.length)
  })

  it('groups small files into frames of about groupBytes and splits large files into splitBytes frames starting a new frame', async () => {
    const { toc, blob } = await convert(tar)
    const stream = decodeAll(toc, blob)
    expect(stream.length).toBe(toc.tarSize)
    const bigEntry = toc.entries.find((e) => e.path === 'dir/big')!
    // the big file's header opens a new frame
    const first = toc.frames.findIndex(
      (f) => f.uoff <= bigEntry.offset && bigEntry.offset < f.uoff + f.ulen,
    )
    expect(toc.frames[first]!.uoff).toBe(bigEntry.offset - 512)
    expect(toc.frames[first]!.ulen).toBe(128 * KiB)
    expect(toc.frames[first + 1]!.ulen).toBe(128 * KiB)
    // small-file frames stay under splitBytes and at least groupBytes (but the last)
    const before = toc.frames.slice(0, first)
    expect(before.length).toBeGreaterThan(1)
    for (const f of before.slice(0, -1)) expect(f.ulen).toBeGreaterThanOrEqual(64 * KiB)
    for (const f of toc.frames) expect(f.ulen).toBeLessThanOrEqual(128 * KiB)
    expect(stream.subarray(bigEntry.offset, bigEntry.offset + big.length).equals(big)).toBe(true)
    // frames are contiguous in both coordinates
    toc.frames.forEach((f, i) => {
      if (i === 0) return expect([f.coff, f.uoff]).toEqual([0, 0])
      const p = toc.frames[i - 1]!
      expect([f.coff, f.uoff]).toEqual([p.coff + p.clen, p.uoff + p.ulen])
    })
  })

  it('places ordered files first (after their parent directories), ends the prefetch part on a frame boundary and keeps the rest in order', async () => {
    const { toc, blob } = await convert(tar, {
      order: ['/dir/small-30', 'dir/big', 'missing', 'dir/small-2'],
    })
    expect(toc.entries.slice(0, 4).map((e) => e.path)).toEqual([
      'dir',
      'dir/small-30',
      'dir/big',
      'dir/small-2',
    ])
    expect(toc.entries.slice(4).map((e) => e.path)).toEqual(
      specs
        .map((s) => s.name)
        .filter((n) => !['dir', 'dir/small-30', 'dir/big', 'dir/small-2'].includes(n)),
    )
    expect(toc.prefetchEnd).toBeGreaterThan(0)
    const boundary = toc.frames.findIndex((f) => f.coff === toc.prefetchEnd)
    expect(boundary).toBeGreaterThan(0)
    const ordered = toc.entries.find((e) => e.path === 'dir/small-2')!
    expect(ordered.offset).toBeLessThan(toc.frames[boundary]!.uoff)
    expect(
      execFileSync('sh', ['-c', 'zstd -d | tar -t'], { input: blob }).toString().split('\n'),
    ).toHaveLength(specs.length + 1)
    // the reordered layer has the same content and DiffID source
    expect(toc.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`)
    const noOrder = await convert(tar)
    expect(noOrder.toc.prefetchEnd).toBe(0)
  })

  it('compresses the placed part at its own level, the rest at the layer’s', async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(20_000))
    const layer = buildTar([
      { name: 'a.txt', content: text },
      { name: 'b.txt', content: text },
    ])
    const at = async (orderedLevel: number) =>
      (await convert(layer, { order: ['a.txt'], orderedLevel, level: 1 })).toc
    const [low, high] = [await at(1), await at(19)]
    expect(high.prefetchEnd).toBeLessThan(low.prefetchEnd)
    const rest = (t: LayerToc) => t.blob.size - t.prefetchEnd
    expect(rest(high)).toBe(rest(low))
  })

  it('places a hard link’s target before it when both are ordered', async () => {
    const { toc } = await convert(tar, { order: ['dir/link', 'dir/big'] })
    expect(toc.entries.slice(0, 3).map((e) => e.path)).toEqual(['dir', 'dir/big', 'dir/link'])
  })

  it('needs an input it can open twice for an order', async () => {
    await expect(
      writeLayer(chunked(tar), memorySink(), { compression: 'none', order: ['dir/big'] }),
    ).rejects.toMatchObject({ code: 'LAYER_ORDER_NEEDS_REOPEN' })
  })

  it.each([
    ['gzip', gzipSync(tar)],
    [
      'gzip with several members',
      Buffer.concat([gzipSync(tar.subarray(0, 10000)), gzipSync(tar.subarray(10000))]),
    ],
    ['zstd', compress(tar)],
    [
      'zstd with several frames',
      Buffer.concat([compress(tar.subarray(0, 10000)), compress(tar.subarray(10000))]),
    ],
  ] as const)('reads an original layer compressed with %s', async (name, bytes) => {
    const compression = name.startsWith('gzip') ? 'gzip' : 'zstd'
    const sink = memorySink()
    const toc = await writeLayer(chunked(bytes, 65536), sink, { compression })
    expect(toc.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`)
    expect(toc.entries).toHaveLength(specs.length)
  })

  it('reports a layer that does not decompress', async () => {
    await expect(
      writeLayer(chunked(Buffer.from('not gzip at all')), memorySink(), { compression: 'gzip' }),
    ).rejects.toMatchObject({ code: 'LAYER_DECOMPRESS_FAILED' })
  })

  it('writes the same blob for the same layer and options', async () => {
    const a = await convert(tar, { order: ['dir/small-3'] })
    const b = await convert(tar, { order: ['dir/small-3'] })
    expect(a.blob.equals(b.blob)).toBe(true)
  })

  /** Frames (by sha256) of `layout` that hold no byte of the entries at `paths` (header to padding). */
  function framesWithout(layout: LayerToc, paths: string[]): string[] {
    const moved = layout.entries
      .filter((e) => paths.includes(e.path))
      .map((e) => [e.offset - 512, e.offset + e.size + ((512 - (e.size % 512)) % 512)] as const)
    return layout.frames
      .filter((f) => !moved.some(([a, b]) => f.uoff < b && a < f.uoff + f.ulen))
      .map((f) => f.digest)
  }

  it('keeps, byte for byte, every frame of the unordered layout that holds no entry the order moved', async () => {
    const tar = buildTar([...specs, ...Array.from({ length: 120 }, (_, i) => small(100 + i))])
    const unordered = (await convert(tar)).toc
    // A small file in a shared frame, and a large file split across frames.
    const moved = ['dir/small-5', 'dir/big']
    const ordered = (await convert(tar, { order: moved })).toc
    const kept = framesWithout(unordered, moved)
    expect(kept.length).toBeGreaterThan(unordered.frames.length / 2)
    const orderedDigests = ordered.frames.map((f) => f.digest)
    for (const d of kept) expect(orderedDigests).toContain(d)
    // What is new after the placed part: only the frames that held a moved entry, re-cut.
    const after = ordered.frames.filter((f) => f.coff >= ordered.prefetchEnd)
    const fresh = after.filter((f) => !kept.includes(f.digest))
    expect(fresh.length).toBeLessThanOrEqual(unordered.frames.length - kept.length)
    // The next generation moves one more file: everything neither generation moved is shared.
    const next = (await convert(tar, { order: [...moved, 'dir/small-20'] })).toc
    const both = framesWithout(unordered, [...moved, 'dir/small-20'])
    for (const d of both) expect(next.frames.map((f) => f.digest)).toContain(d)
  })

  it('writes the unordered blob, byte for byte, when the order names nothing in the layer', async () => {
    const unordered = await convert(tar)
    const ordered = await convert(tar, { order: ['/usr/bin/node', 'etc/passwd'] })
    expect(ordered.toc.blob.digest).toBe(unordered.toc.blob.digest)
    expect(ordered.toc.prefetchEnd).toBe(0)
  })

  describe('a placed file with the byte ranges its profile read', () => {
    const body = randomBytes(2048 * KiB)
    const layer = buildTar([
      ...Array.from({ length: 10 }, (_, i) => small(300 + i)),
      { name: 'lib', type: 'directory', mode: 0o755 },
      { name: 'lib/big.so', content: body },
      { name: 'etc/conf', content: 'x'.repeat(5000) },
    ])
    const ranges: [number, number][] = [
      [0, 4 * KiB],
      [700 * KiB, 20 * KiB],
      [1500 * KiB, 300 * KiB],
    ]
    const read = ranges.reduce((n, [, l]) => n + l, 0)
    const byRanges = (minColdBytes: number, extra: Partial<WriteLayerOptions> = {}) =>
      convert(layer, {
        order: ['/lib/big.so', '/etc/conf'],
        ranges: new Map([['/lib/big.so', ranges]]),
        minColdBytes,
        ...extra,
      })
    /** The frames holding any byte of `ranges` of the entry at `path`. */
    const holding = (toc: LayerToc, path: string, r: [number, number][]) => {
      const e = toc.entries.find((x) => x.path === path)!
      return toc.frames.filter((f) =>
        r.some(([o, l]) => f.uoff < e.offset + o + l && e.offset + o < f.uoff + f.ulen),
      )
    }

    it('cuts its frames at the ranges’ edges, so the frames holding read bytes hold nothing else but its header', async () => {
      const { toc, blob } = await byRanges(4 * KiB)
      const e = toc.entries.find((x) => x.path === 'lib/big.so')!
      const starts = new Set(toc.frames.map((f) => f.uoff))
      for (const [o, l] of ranges.slice(1)) {
        expect(starts.has(e.offset + o)).toBe(true)
        expect(starts.has(e.offset + o + l)).toBe(true)
      }
      const held = holding(toc, 'lib/big.so', ranges)
      // The first range starts the file: its frame holds the file's 512-byte header too.
      expect(held.reduce((n, f) => n + f.ulen, 0)).toBe(read + 512)
      // Nothing else changed: the same files, the same bytes, all before prefetchEnd.
      const stream = decodeAll(toc, blob)
      expect(stream.subarray(e.offset, e.offset + body.length).equals(body)).toBe(true)
      expect(toc.entries.map((x) => x.path).slice(0, 3)).toEqual(['lib', 'lib/big.so', 'etc/conf'])
      expect(toc.frames.find((f) => f.coff === toc.prefetchEnd)!.uoff).toBeGreaterThan(
        e.offset + body.length,
      )
    })

    it('keeps an unread stretch shorter than minColdBytes in the frames of the ranges around it', async () => {
      const near: [number, number][] = [
        [8 * KiB, 4 * KiB],
        [40 * KiB, 4 * KiB],
      ]
      const { toc } = await convert(layer, {
        order: ['lib/big.so'],
        ranges: new Map([['lib/big.so', near]]),
        minColdBytes: 64 * KiB,
      })
      const held = holding(toc, 'lib/big.so', near)
      // One stretch [0, 44 KiB): the 8 KiB before the first range and the 28 KiB gap ride along.
      expect(held).toHaveLength(1)
      expect(held[0]!.ulen).toBe(512 + 44 * KiB)
    })

    it('by default, leaves an unread stretch of 16 KiB or more out of the frames that hold read bytes (a start recorded page by page reads scattered pages)', async () => {
      // Pages a start touched, 20 KiB apart (as page faults in a library's code are).
      const pages: [number, number][] = [
        [64 * KiB, 4 * KiB],
        [88 * KiB, 4 * KiB],
        [112 * KiB, 4 * KiB],
      ]
      const { toc } = await convert(layer, {
        order: ['lib/big.so'],
        ranges: new Map([['lib/big.so', pages]]),
      })
      expect(DEFAULT_MIN_COLD_BYTES).toBe(16 * KiB)
      const held = holding(toc, 'lib/big.so', pages)
      // Each page its own frame: the 20 KiB between them stay out (a 64 KiB minimum took them in).
      expect(held).toHaveLength(pages.length)
      expect(held.reduce((n, f) => n + f.ulen, 0)).toBe(pages.length * 4 * KiB)
    })

    it('bounds what a start fetches by what it read, not by the frame size', async () => {
      const minCold = 16 * KiB
      const cut = holding((await byRanges(minCold)).toc, 'lib/big.so', ranges)
      const whole = holding(
        (await convert(layer, { order: ['/lib/big.so', '/etc/conf'] })).toc,
        'lib/big.so',
        ranges,
      )
      const bytes = (fs: { clen: number }[]) => fs.reduce((n, f) => n + f.clen, 0)
      // Random bytes do not compress: a frame is its content plus zstd's few bytes per block.
      const bound = read + ranges.length * 2 * minCold + 512 + cut.length * 64
      expect(bytes(cut)).toBeLessThanOrEqual(bound)
      expect(bytes(whole)).toBeGreaterThan(bound)
    })

    it('compresses the frames holding read bytes at orderedLevel and the rest of the placed part at level', async () => {
      const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(40_000))
      const tarOfText = buildTar([{ name: 'big.txt', content: text }])
      const readText: [number, number][] = [[600 * KiB, 200 * KiB]]
      const { toc, blob } = await convert(tarOfText, {
        order: ['big.txt'],
        ranges: new Map([['big.txt', readText]]),
        level: 1,
        orderedLevel: 19,
      })
      const hot = new Set(holding(toc, 'big.txt', readText))
      expect(hot.size).toBeGreaterThan(0)
      const placed = toc.frames.filter((f) => f.coff < toc.prefetchEnd)
      expect(placed.length).toBeGreaterThan(hot.size)
      const codec = createCodec('zstd')
      for (const f of placed) {
        const bytes = blob.subarray(f.coff, f.coff + f.clen)
        const level = hot.has(f) ? 19 : 1
        const again = createCodec('zstd', level).encode(decodeFrame(codec, bytes, f))
        expect(Buffer.from(again).equals(bytes)).toBe(true)
      }
    })
  })
})
