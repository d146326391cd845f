import { setTimeout as sleep } from 'node:timers/promises'
import { describeError } from '../../runtime/errors.ts'
import type { Codec } from '../../runtime/format/codec/codec.ts'
import { decodeRun, type Frame } from '../../runtime/format/frame.ts'
import type { FsBlob } from '../../runtime/format/fs-index.ts'
import type { CachedBlob } from './cached-blob.ts'
import type { FrameDecoder } from './frame-decoder.ts'
import { MountError } from './errors.ts'
import type { Source, SourceSet } from './source-set.ts'

export interface LoaderStats {
  /** Range requests sent (answered or not). */
  requests: number
  /** Compressed bytes received in range answers that verified. */
  bytes: number
  frames: number
  /** Range answers whose frames failed verification (refetched elsewhere). */
  rejected: number
  /** Frames copied from another cached blob holding the same content (not fetched). */
  copied: number
}

/** Frames of other cached blobs, by content (blob-cache.ts). */
export interface FrameCopies {
  hasCopy(frame: Frame, target: CachedBlob): boolean
  copyFrame(frame: Frame, target: CachedBlob): Promise<boolean>
}

export interface FrameLoaderOptions {
  index: { readonly blobs: readonly FsBlob[] }
  codec: Codec
  repository: string
  sources: SourceSet
  /** One per `index.blobs`, same order. */
  blobs: readonly CachedBlob[]
  /** Missing frames after the ones asked for, fetched in the same request (default 256 KiB). */
  neighbourBytes?: number
  /** Largest range request (compressed bytes, default 4 MiB; a single larger frame is whole). */
  maxRunBytes?: number
  /** Verifies and decodes large runs off this thread (default: all inline). */
  decoder?: FrameDecoder
  /** Where a missing frame may already be, in another blob: copied instead of fetched. */
  copies?: FrameCopies
  warn?: (message: string) => void
  onStored?: () => void
}

/**
 * Makes frames present in the cache: waits for the fetch or bundle record already bringing a
 * frame (single-flight), fetches each run of the other missing frames in one range request (plus
 * a few missing neighbours), verifies every frame against the index before decoding it, refetches
 * from the next source when bytes are wrong, and stores them durably. A frame that no source
 * could provide is `FRAME_UNAVAILABLE`, with a warning saying why.
 */
export class FrameLoader {
  readonly stats: LoaderStats = { requests: 0, bytes: 0, frames: 0, rejected: 0, copied: 0 }
  /**
   * One byte per frame of each blob, 1 once the frame is readable from the cache, for the FUSE
   * layer's direct reads (host/fuse). Set by this loader's stores and by every presence check it
   * makes (frames another mount's loader brought count once checked); never cleared: a blob in
   * use keeps its frames.
   */
  readonly present: Uint8Array[]
  readonly #o: Required<Omit<FrameLoaderOptions, 'warn' | 'onStored' | 'decoder' | 'copies'>>
  readonly #copies: FrameCopies | undefined
  readonly #decoder: FrameDecoder | undefined
  readonly #warn: (message: string) => void
  readonly #onStored: () => void
  #demand = 0
  /** When the last on-demand read came (performance.now()); none yet: -Infinity. */
  #lastDemandAt = -Infinity
  #idleWaiters: (() => void)[] = []

  constructor(options: FrameLoaderOptions) {
    this.#o = { neighbourBytes: 256 * 1024, maxRunBytes: 4 * 1024 * 1024, ...options }
    this.#decoder = options.decoder
    this.#copies = options.copies
    this.#warn = options.warn ?? (() => {})
    this.#onStored = options.onStored ?? (() => {})
    this.present = options.index.blobs.map((b, i) =>
      Uint8Array.from(b.frames, (f) => (options.blobs[i]!.has(f) ? 1 : 0)),
    )
  }

  get blobs(): readonly CachedBlob[] {
    return this.#o.blobs
  }

  /** On-demand loads under way (background work waits while there are any). */
  get demand(): number {
    return this.#demand
  }

  /**
   * Resolves once no on-demand read has come for `ms`: a starting process reads in bursts, and
   * work that can wait (the background fetch) should not compete with it for CPU and link.
   */
  async quiet(ms: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      await this.idle()
      const wait = this.#lastDemandAt + ms - performance.now()
      if (wait <= 0 && this.#demand === 0) return
      await sleep(Math.max(1, wait), undefined, { signal })
    }
  }

  /** Resolves once no on-demand load is under way. */
  idle(): Promise<void> {
    if (this.#demand === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  /**
   * Whether a read of frames `first..last` of blob `b` can be answered from the cache now. The
   * read counts as on-demand activity either way, so quiet() keeps background work waiting while
   * a process is still reading, even when everything it reads is already here.
   */
  readableNow(b: number, first: number, last: number): boolean {
    this.#lastDemandAt = performance.now()
    return this.#missing(b, first, last).length === 0
  }

  /** Whether every frame of `first..last` not present yet is on its way (a bundle record). */
  coming(b: number, first: number, last: number): boolean {
    const blob = this.#o.blobs[b]!
    const frames = this.#o.index.blobs[b]!.frames
    return this.#missing(b, first, last).every((i) => blob.pending(frames[i]!) !== undefined)
  }

  /** Frames `first..last` of blob `b` are present when this resolves. */
  async ensure(b: number, first: number, last: number, demand = true): Promise<void> {
    if (demand) {
      this.#demand++
      this.#lastDemandAt = performance.now()
    }
    try {
      for (let round = 0; round < 4; round++) {
        const { own, others } = this.#startMissing(b, first, last, demand)
        if (own.length === 0 && others.length === 0) return
        await Promise.all([...own, ...others.map((p) => p.catch(() => {}))])
      }
      if (this.#missing(b, first, last).length > 0) {
        throw new MountError(
          'FRAME_UNAVAILABLE',
          `blob ${b} frames ${first}..${last}: still missing`,
        )
      }
    } finally {
      if (demand && --this.#demand === 0) for (const w of this.#idleWaiters.splice(0)) w()
    }
  }

  /** Verifies and decodes frames `first..` of blob `b` from `bytes` (they start at frame first's
   * coff), then stores them. Throws FRAME_* on bytes that do not verify. */
  async storeRun(b: number, first: number, bytes: Uint8Array): Promise<Frame[]> {
    const frames = this.#framesIn(b, first, bytes.length)
    const decoded = this.#decoder
      ? await this.#decoder.decode(this.#o.codec, frames, bytes)
      : decodeRun(this.#o.codec, frames, bytes)
    await this.#o.blobs[b]!.store(frames, decoded)
    this.present[b]!.fill(1, first, first + frames.length)
    this.#onStored()
    return frames
  }

  /** The next run of missing frames of blob `b` from frame `from`, up to `maxBytes` compressed. */
  missingRun(
    b: number,
    from: number,
    maxBytes: number,
  ): { first: number; last: number } | undefined {
    const blob = this.#o.blobs[b]!
    const frames = this.#o.index.blobs[b]!.frames
    let first = from
    while (first < frames.length && blob.has(frames[first]!)) first++
    if (first >= frames.length) return undefined
    let last = first
    while (
      last + 1 < frames.length &&
      !blob.has(frames[last + 1]!) &&
      frames[last + 1]!.coff + frames[last + 1]!.clen - frames[first]!.coff <= maxBytes
    )
      last++
    return { first, last }
  }

  #missing(b: number, first: number, last: number): number[] {
    const blob = this.#o.blobs[b]!
    const frames = this.#o.index.blobs[b]!.frames
    const present = this.present[b]!
    const out: number[] = []
    for (let i = first; i <= last; i++) {
      if (present[i] === 1) continue
      if (blob.has(frames[i]!)) present[i] = 1
      else out.push(i)
    }
    return out
  }

  #startMissing(b: number, first: number, last: number, demand: boolean) {
    const blob = this.#o.blobs[b]!
    const frames = this.#o.index.blobs[b]!.frames
    const own: Promise<void>[] = []
    const others: Promise<void>[] = []
    let run: number[] = []
    const flush = () => {
      if (run.length === 0) return
      if (demand) run = this.#withNeighbours(b, run)
      const [a, z] = [run[0]!, run[run.length - 1]!]
      const done = this.#fetchRun(b, a, z)
      blob.track(frames.slice(a, z + 1), done)
      own.push(done)
      run = []
    }
    for (const i of this.#missing(b, first, last)) {
      const pending = blob.pending(frames[i]!)
      if (pending) {
        flush()
        others.push(pending)
        continue
      }
      if (this.#copies?.hasCopy(frames[i]!, blob)) {
        flush()
        const done = this.#copy(b, i)
        blob.track([frames[i]!], done)
        own.push(done)
        continue
      }
      const prev = run[run.length - 1]
      const bytes =
        prev === undefined ? 0 : frames[i]!.coff + frames[i]!.clen - frames[run[0]!]!.coff
      if (prev !== undefined && (prev !== i - 1 || bytes > this.#o.maxRunBytes)) flush()
      run.push(i)
    }
    flush()
    return { own, others }
  }

  /** Extends a run with the missing, unclaimed frames right after it, up to the bounds. */
  #withNeighbours(b: number, run: number[]): number[] {
    const blob = this.#o.blobs[b]!
    const frames = this.#o.index.blobs[b]!.frames
    const start = frames[run[0]!]!.coff
    let extra = 0
    for (let i = run[run.length - 1]! + 1; i < frames.length; i++) {
      const f = frames[i]!
      if (blob.has(f) || blob.pending(f) || this.#copies?.hasCopy(f, blob)) break
      extra += f.clen
      if (extra > this.#o.neighbourBytes || f.coff + f.clen - start > this.#o.maxRunBytes) break
      run.push(i)
    }
    return run
  }

  /**
   * A frame another cached blob holds, copied from there (if it still has it; else the next
   * round of ensure() fetches it).
   */
  async #copy(b: number, i: number): Promise<void> {
    const frame = this.#o.index.blobs[b]!.frames[i]!
    if (await this.#copies!.copyFrame(frame, this.#o.blobs[b]!)) {
      this.present[b]![i] = 1
      this.stats.copied++
      this.#onStored()
    }
  }

  async #fetchRun(b: number, first: number, last: number): Promise<void> {
    const frames = this.#o.index.blobs[b]!.frames
    const digest = this.#o.index.blobs[b]!.digest
    const start = frames[first]!.coff
    const end = frames[last]!.coff + frames[last]!.clen - 1
    const what = `blob ${digest} bytes ${start}-${end}`
    const exclude = new Set<Source>()
    const reasons: string[] = []
    while (exclude.size < this.#o.sources.sources.length) {
      let got: { value: Buffer; source: Source }
      try {
        got = await this.#o.sources.call(
          what,
          (s, signal) => {
            this.stats.requests++
            return s.client.fetchRange(this.#o.repository, digest, start, end, { signal })
          },
          { exclude },
        )
      } catch (err) {
        reasons.push(describeError(err))
        break
      }
      try {
        const stored = await this.storeRun(b, first, got.value)
        this.stats.bytes += got.value.length
        this.stats.frames += stored.length
        return
      } catch (err) {
        // The mount closed under the fetch: the bytes were not wrong, and the source is fine.
        if ((err as { code?: unknown }).code === 'MOUNT_CLOSED') throw err
        // Wrong bytes (flipped, truncated, another blob's): never served; ask someone else.
        this.stats.rejected++
        reasons.push(`${got.source.url}: ${describeError(err)}`)
        this.#o.sources.markDown(got.source, `${what}: ${describeError(err)}`)
        exclude.add(got.source)
      }
    }
    const message = `${what}: no source gave verified bytes (${reasons.join('; ')})`
    this.#warn(`read failed, answering EIO: ${message}`)
    throw new MountError('FRAME_UNAVAILABLE', message)
  }

  /** The whole frames of blob `b` from frame `first` covering `length` compressed bytes. */
  #framesIn(b: number, first: number, length: number): Frame[] {
    const frames = this.#o.index.blobs[b]!.frames
    const out: Frame[] = []
    const start = frames[first]!.coff
    for (let i = first; i < frames.length && frames[i]!.coff < start + length; i++) {
      out.push(frames[i]!)
    }
    const last = out[out.length - 1]
    if (!last || last.coff + last.clen !== start + length) {
      throw new MountError(
        'FRAME_UNAVAILABLE',
        `blob ${b}: ${length} bytes from frame ${first} do not end on a frame boundary`,
      )
    }
    return out
  }
}
