/**
 * What verifying and decoding a run of frames costs the thread that serves FUSE, inline
 * (decodeFrame on that thread) versus through the decoder threads (host/mount/frame-decoder.ts),
 * for runs of 64 KiB to 4 MiB decoded (4 MiB is FrameLoader's largest range request; bundle
 * records are up to a few MiB). Data: half random, half zeros (about 2:1, like binaries).
 * For each size: the calling thread's busy time per run (event-loop utilization: inline, all of
 * the sha256 + zstd; threaded, the copy, the messages and the wrapping of the buffers) and the
 * latency of one run, then the throughput of the run size with 8 runs in flight.
 *
 *   node --import tsx test/bench/frame-decoder.ts [runs=50]
 *
 * Prints medians; asserts nothing.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createFrameDecoder, OFF_THREAD_BYTES } from '../../host/mount/frame-decoder.ts'
import { createCodec } from '../../runtime/format/codec/codec.ts'
import { decodeFrame, type Frame } from '../../runtime/format/frame.ts'
import { sha256Of } from '../../runtime/oci/digest.ts'

const runs = Number(process.argv[2] ?? 50)
const codec = createCodec('zstd')
const FRAME = 256 * 1024
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

/** A run of `size` decoded bytes in frames of up to 256 KiB (the converter groups files into
 * frames of 256 KiB to 1 MiB: formats.md; smaller frames cost more per byte). */
function makeRun(size: number): { frames: Frame[]; bytes: Buffer } {
  const frames: Frame[] = []
  const parts: Buffer[] = []
  let coff = 0
  for (let uoff = 0; uoff < size; uoff += FRAME) {
    const n = Math.min(FRAME, size - uoff)
    const packed = codec.encode(Buffer.concat([randomBytes(n >> 1), Buffer.alloc(n - (n >> 1))]))
    frames.push({ coff, clen: packed.length, uoff, ulen: n, digest: sha256Of(packed) })
    parts.push(packed)
    coff += packed.length
  }
  return { frames, bytes: Buffer.concat(parts) }
}

const inline = ({ frames, bytes }: { frames: Frame[]; bytes: Buffer }) =>
  frames.map((f) => decodeFrame(codec, bytes.subarray(f.coff, f.coff + f.clen), f))

/** Busy ms of this thread and wall ms, per call of `fn`, medians of `runs`. */
async function measure(fn: () => unknown): Promise<{ busy: number; wall: number }> {
  const busy: number[] = []
  const wall: number[] = []
  for (let i = 0; i < runs; i++) {
    const elu = performance.eventLoopUtilization()
    const t = performance.now()
    await fn()
    wall.push(performance.now() - t)
    busy.push(performance.eventLoopUtilization(elu).active)
  }
  return { busy: median(busy), wall: median(wall) }
}

// Every run on the thread, whatever its size (the threshold is what this measures).
const decoder = createFrameDecoder({ threads: 1, offThreadBytes: 0 })
const keepAlive = setInterval(() => {}, 1000) // the decoder's threads are unref'd
try {
  if (!(await decoder.ready)) throw new Error('no decoder thread started')
  console.log(`threshold OFF_THREAD_BYTES = ${OFF_THREAD_BYTES}; 1 decoder thread; medians of ${runs}`)
  const header = ['decoded run', 'inline busy', 'thread busy', 'inline wall', 'thread wall', 'MB/s inline', 'MB/s 8 in flight']
  console.log(header.map((h) => h.padStart(18)).join(''))
  for (const size of [64 << 10, 256 << 10, 1 << 20, 4 << 20]) {
    const r = makeRun(size)
    const a = await measure(() => inline(r))
    const b = await measure(() => decoder.decode(codec, r.frames, r.bytes))
    let t = performance.now()
    for (let i = 0; i < 8; i++) inline(r)
    const mbInline = (8 * size) / 1e3 / (performance.now() - t)
    t = performance.now()
    await Promise.all(Array.from({ length: 8 }, () => decoder.decode(codec, r.frames, r.bytes)))
    const mbThread = (8 * size) / 1e3 / (performance.now() - t)
    const cells = [
      `${size >> 10} KiB`,
      `${a.busy.toFixed(3)} ms`,
      `${b.busy.toFixed(3)} ms`,
      `${a.wall.toFixed(3)} ms`,
      `${b.wall.toFixed(3)} ms`,
      mbInline.toFixed(0),
      mbThread.toFixed(0),
    ]
    console.log(cells.map((c) => c.padStart(18)).join(''))
  }
  console.log(`decoder stats: ${JSON.stringify(decoder.stats)}`)
} finally {
  clearInterval(keepAlive)
  await decoder.close()
}
