import { createHash } from 'node:crypto'
import type { Digest } from '../oci/digest.ts'
import { sha256Of } from '../oci/digest.ts'
import type { BlobSink } from './blob-sink.ts'
import type { Codec } from './codec/codec.ts'
import type { Frame } from './frame.ts'

/**
 * Accumulates tar bytes and cuts them into frames. `append` copies into one growing buffer (the
 * caller's chunks may be reused); `cut` compresses what is pending into one frame, hashes it and
 * queues it for the sink; `drain` writes the queue with backpressure. All synchronous but `drain`,
 * so a synchronous tar parser can drive it.
 */
export class FrameWriter {
  readonly frames: Frame[] = []
  #codec: Codec
  /** Codec of frames marked hot (profiled bytes); none: every frame uses `#codec`. */
  #hotCodec: Codec | undefined
  #hot = false
  readonly #sink: BlobSink
  readonly #blobHash = createHash('sha256')
  #buf: Buffer
  #fill = 0
  #coff = 0
  #uoff = 0
  #queue: Buffer[] = []

  constructor(codec: Codec, sink: BlobSink, capacity: number) {
    this.#codec = codec
    this.#sink = sink
    this.#buf = Buffer.allocUnsafe(capacity)
  }

  /**
   * Compresses the frames cut from now on with `codec` (the same format, e.g. another level), and
   * those marked hot with `hot` (default: `codec` too).
   */
  useCodec(codec: Codec, hot?: Codec): void {
    this.#codec = codec
    this.#hotCodec = hot
  }

  /** The pending frame holds bytes a start reads: it is compressed with the hot codec. */
  markHot(): void {
    this.#hot = true
  }

  /** Uncompressed offset (in the blob's tar stream) of the next appended byte. */
  get uoff(): number {
    return this.#uoff + this.#fill
  }

  /** Compressed bytes produced so far (the offset where the next frame starts). */
  get coff(): number {
    return this.#coff
  }

  get pending(): number {
    return this.#fill
  }

  append(bytes: Uint8Array): void {
    if (this.#fill + bytes.length > this.#buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#fill + bytes.length))
      this.#buf.copy(bigger, 0, 0, this.#fill)
      this.#buf = bigger
    }
    this.#buf.set(bytes, this.#fill)
    this.#fill += bytes.length
  }

  appendZeros(length: number): void {
    if (length > 0) this.append(Buffer.alloc(length))
  }

  /** Ends the current frame, if anything is pending. */
  cut(): void {
    if (this.#fill === 0) return
    const codec = (this.#hot && this.#hotCodec) || this.#codec
    this.#hot = false
    const compressed = codec.encode(this.#buf.subarray(0, this.#fill))
    this.frames.push({
      coff: this.#coff,
      clen: compressed.length,
      uoff: this.#uoff,
      ulen: this.#fill,
      digest: sha256Of(compressed),
    })
    this.#blobHash.update(compressed)
    this.#coff += compressed.length
    this.#uoff += this.#fill
    this.#fill = 0
    this.#queue.push(compressed)
  }

  async drain(): Promise<void> {
    while (this.#queue.length > 0) await this.#sink.write(this.#queue.shift()!)
  }

  /** Cuts, drains, and returns the blob's digest and size. */
  async finish(): Promise<{ digest: Digest; size: number; tarSize: number }> {
    this.cut()
    await this.drain()
    return {
      digest: `sha256:${this.#blobHash.digest('hex')}` as Digest,
      size: this.#coff,
      tarSize: this.#uoff,
    }
  }
}
