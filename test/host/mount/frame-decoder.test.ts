import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createCodec } from '../../../runtime/format/codec/codec.ts'
import { decodeFrame, type Frame } from '../../../runtime/format/frame.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import {
  createFrameDecoder,
  OFF_THREAD_BYTES,
  type FrameDecoder,
} from '../../../host/mount/frame-decoder.ts'

const codec = createCodec('zstd')

/** Consecutive frames of half-compressible data (random halves, zero halves), back to back. */
function run(sizes: number[]): { frames: Frame[]; bytes: Buffer; plain: Buffer[] } {
  const frames: Frame[] = []
  const parts: Buffer[] = []
  const plain: Buffer[] = []
  let coff = 0
  let uoff = 0
  for (const size of sizes) {
    const data = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1))])
    const packed = codec.encode(data)
    frames.push({ coff, clen: packed.length, uoff, ulen: size, digest: sha256Of(packed) })
    parts.push(packed)
    plain.push(data)
    coff += packed.length
    uoff += size
  }
  return { frames, bytes: Buffer.concat(parts), plain }
}

let decoders: FrameDecoder[] = []
const decoder = (options?: Parameters<typeof createFrameDecoder>[0]) => {
  const d = createFrameDecoder({ threads: 1, ...options })
  decoders.push(d)
  return d
}
afterEach(async () => {
  await Promise.all(decoders.map((d) => d.close()))
  decoders = []
})

describe('createFrameDecoder', () => {
  it('decodes a large run on its thread to the same bytes as decodeFrame', async () => {
    const d = decoder()
    expect(await d.ready).toBe(true)
    const r = run([400_000, 300_000, 5_000])
    const got = await d.decode(codec, r.frames, r.bytes)
    expect(got.map((b, i) => b.equals(r.plain[i]!))).toEqual([true, true, true])
    const start = r.frames[0]!.coff
    const inline = r.frames.map((f) =>
      decodeFrame(codec, r.bytes.subarray(f.coff - start, f.coff - start + f.clen), f),
    )
    expect(Buffer.concat(got).equals(Buffer.concat(inline))).toBe(true)
    expect(d.stats).toEqual({ threaded: 1, inline: 0, died: 0 })
  })

  it('answers concurrent runs on two threads, each with its own frames', async () => {
    const d = decoder({ threads: 2 })
    expect(await d.ready).toBe(true)
    const runs = Array.from({ length: 8 }, (_, i) => run([OFF_THREAD_BYTES + i * 4096, 70_000]))
    const got = await Promise.all(runs.map((r) => d.decode(codec, r.frames, r.bytes)))
    got.forEach((buffers, i) =>
      expect(Buffer.concat(buffers).equals(Buffer.concat(runs[i]!.plain))).toBe(true),
    )
    expect(d.stats.threaded).toBe(8)
  })

  it('with lazy, starts its threads on the first large run (answered inline), then uses them', async () => {
    const d = decoder({ lazy: true })
    const small = run([OFF_THREAD_BYTES / 4])
    await d.decode(codec, small.frames, small.bytes)
    const r = run([OFF_THREAD_BYTES * 2])
    expect((await d.decode(codec, r.frames, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
    expect(d.stats).toEqual({ threaded: 0, inline: 2, died: 0 })
    expect(await d.ready).toBe(true)
    expect((await d.decode(codec, r.frames, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
    expect(d.stats).toEqual({ threaded: 1, inline: 2, died: 0 })
  })

  it('decodes small runs inline (a message round trip costs more than they do)', async () => {
    const d = decoder()
    await d.ready
    const r = run([OFF_THREAD_BYTES / 4])
    expect((await d.decode(codec, r.frames, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
    expect(d.stats).toEqual({ threaded: 0, inline: 1, died: 0 })
  })

  it('leaves the caller’s bytes intact (the thread gets a copy, not a view of a larger buffer)', async () => {
    const d = decoder()
    await d.ready
    const r = run([OFF_THREAD_BYTES * 2])
    const bigger = Buffer.concat([Buffer.from('header'), r.bytes])
    const view = bigger.subarray(6)
    await d.decode(codec, r.frames, view)
    expect(view.equals(r.bytes)).toBe(true)
    expect(d.stats.threaded).toBe(1)
  })

  // Wrong bytes, each rejected on the thread with the code FrameLoader acts on (refetch elsewhere).
  const bad: [string, (r: ReturnType<typeof run>) => { frames: Frame[]; bytes: Buffer }, string][] =
    [
      // one flipped bit in the compressed bytes: the digest no longer matches
      [
        'a flipped bit',
        (r) => ({ frames: r.frames, bytes: flip(r.bytes, 100) }),
        'FRAME_DIGEST_MISMATCH',
      ],
      // the range answer stopped one byte short of the frame's end
      [
        'a truncated frame',
        (r) => ({ frames: r.frames, bytes: r.bytes.subarray(0, r.bytes.length - 1) }),
        'FRAME_TRUNCATED',
      ],
      // the index says the frame decodes to more bytes than it does (digest of the bytes is right)
      [
        'a wrong decoded length',
        (r) => ({ frames: [{ ...r.frames[0]!, ulen: r.frames[0]!.ulen + 1 }], bytes: r.bytes }),
        'FRAME_SIZE_MISMATCH',
      ],
      // bytes that are not zstd at all, with a matching digest (a hostile artifact)
      ['not a zstd frame', () => garbage(OFF_THREAD_BYTES * 2), 'FRAME_DECODE_FAILED'],
    ]
  it.each(bad)('rejects %s with its code', async (_what, spoil, code) => {
    const d = decoder()
    await d.ready
    const { frames, bytes } = spoil(run([OFF_THREAD_BYTES * 2]))
    await expect(d.decode(codec, frames, bytes)).rejects.toMatchObject({
      name: 'FormatError',
      code,
    })
    expect(d.stats.inline).toBe(0)
  })

  it('answers runs whose thread died, inline', async () => {
    const warnings: string[] = []
    const d = decoder({
      workerEntry: new URL('./fixtures/exiting-decoder-worker.mjs', import.meta.url),
      warn: (m) => warnings.push(m),
    })
    expect(await d.ready).toBe(true)
    const r = run([OFF_THREAD_BYTES * 2])
    for (let i = 0; i < 2; i++) {
      const got = await d.decode(codec, r.frames, r.bytes)
      expect(got[0]!.equals(r.plain[0]!)).toBe(true)
    }
    expect(d.stats.threaded).toBe(0)
    expect(d.stats.died).toBeGreaterThanOrEqual(1)
    expect(warnings[0]).toMatch(/decoder thread exited with 3; its 1 run\(s\) are decoded inline/)
  })

  it('replaces a thread that dies in a run: that run is answered inline, later ones on the new thread', async () => {
    const warnings: string[] = []
    const d = decoder({
      workerEntry: new URL('./fixtures/dying-decoder-worker.mjs', import.meta.url),
      warn: (m) => warnings.push(m),
    })
    expect(await d.ready).toBe(true)
    const r = run([OFF_THREAD_BYTES * 2])
    // The fixture's hook: the thread exits on a run whose first frame has this uoff.
    const dying = r.frames.map((f) => ({ ...f, uoff: 7_777_777 }))
    expect((await d.decode(codec, dying, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
    expect(d.stats).toEqual({ threaded: 0, inline: 1, died: 1 })
    expect(warnings).toEqual([
      'decoder thread exited with 3; its 1 run(s) are decoded inline, and a new thread starts',
    ])
    // Runs decode inline until the new thread is ready, then on it.
    await vi.waitFor(
      async () => {
        expect((await d.decode(codec, r.frames, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
        expect(d.stats.threaded).toBe(1)
      },
      { timeout: 30_000, interval: 50 },
    )
    expect(d.stats.died).toBe(1)
  })

  it('decodes inline after close, which is idempotent', async () => {
    const d = decoder()
    await d.ready
    await d.close()
    await d.close()
    const r = run([OFF_THREAD_BYTES * 2])
    expect((await d.decode(codec, r.frames, r.bytes))[0]!.equals(r.plain[0]!)).toBe(true)
    expect(d.stats).toEqual({ threaded: 0, inline: 1, died: 0 })
  })
})

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[at]! ^= 1
  return copy
}

function garbage(ulen: number): { frames: Frame[]; bytes: Buffer } {
  const bytes = randomBytes(4096)
  return {
    frames: [{ coff: 0, clen: bytes.length, uoff: 0, ulen, digest: sha256Of(bytes) }],
    bytes,
  }
}
