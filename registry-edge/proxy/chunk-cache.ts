import { LRUCache } from 'lru-cache'
import { describeError } from '../../runtime/errors.ts'
import { OciError, type Digest } from '../../runtime/oci/index.ts'
import type { ByteRange } from '../backend/registry-backend.ts'
import { silentLogger, type EdgeLogger } from '../observability/edge-logger.ts'
import { chunkCount, chunkIndex, chunkLength } from './chunk-math.ts'
import type { DiskChunkStore } from './disk-chunk-store.ts'
import { Limiter } from './limiter.ts'

/** Streams bytes `start..end` (inclusive) of a blob from wherever it really lives. */
export type ChunkSource = (range: ByteRange, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>

/** A blob the cache can read: its identity, its size (from the upstream) and where to fetch it. */
export interface CacheBlob {
  digest: Digest
  size: number
  source: ChunkSource
}

export interface ChunkCacheEvents {
  hit?(layer: 'memory' | 'disk'): void
  /** A chunk read that had to wait for the upstream (its own fetch or one already running). */
  miss?(): void
  /** The whole blob did not hash to its digest: every chunk of it was dropped. */
  invalid?(digest: Digest): void
}

export interface ChunkCacheOptions {
  disk: DiskChunkStore
  /** Size bound of the memory LRU, in bytes. */
  memoryBytes: number
  /** Chunks per upstream request: a reader's read-ahead window and a fill step. Default 8. */
  runChunks?: number
  /** Blobs filled in the background at once; 0 turns background filling off. Default 2. */
  fillConcurrency?: number
  /** Fills queued beyond this are dropped (the next read of the blob asks again). Default 64. */
  maxQueuedFills?: number
  logger?: EdgeLogger
  events?: ChunkCacheEvents
}

/**
 * The proxy's blob cache: fixed-size chunks keyed by (digest, chunk index), never by the range a
 * client asked for, in a memory LRU in front of a disk store (both bounded by bytes).
 *
 * - Single flight: a chunk being fetched is a promise in `#inflight`; every reader of it awaits
 *   that promise, so N concurrent readers cost one upstream request. A failed fetch is dropped
 *   from `#inflight` and cached nowhere: the next reader tries again.
 * - Readers never wait for a whole blob: a read claims only the chunks it needs (up to
 *   `runChunks` ahead, as one upstream range request), and gets each chunk as soon as its last
 *   byte arrives. After the first chunk, the rest of the blob is filled in the background
 *   (bounded by `fillConcurrency`, `runChunks` per request so a reader never waits long behind it).
 * - Trust: the upstream gives no per-chunk digests, so a chunk cannot be verified alone. Chunks
 *   are served as they arrive (as a pull-through registry streams a blob it is still fetching),
 *   but a blob is *verified* only once every chunk is on disk and the whole hashes to its digest;
 *   then `verified` is written. On a mismatch every chunk of the blob is dropped, from memory and
 *   disk, and later reads fetch again. Clients that need certainty verify what they read (whole
 *   blobs against the digest; thaw's host verifies every frame against its index).
 */
export class ChunkCache {
  readonly chunkSize: number
  readonly #disk: DiskChunkStore
  readonly #memory: LRUCache<string, Buffer>
  readonly #inflight = new Map<string, Promise<Buffer>>()
  readonly #writing = new Map<string, Promise<void>>()
  readonly #verifying = new Map<Digest, Promise<void>>()
  readonly #fills = new Map<Digest, Promise<void>>()
  readonly #fillSlots: Limiter | undefined
  readonly #runChunks: number
  readonly #maxQueuedFills: number
  readonly #logger: EdgeLogger
  readonly #events: ChunkCacheEvents
  readonly #closed = new AbortController()

  constructor(options: ChunkCacheOptions) {
    this.#disk = options.disk
    this.chunkSize = options.disk.chunkSize
    this.#memory = new LRUCache({ maxSize: Math.max(1, options.memoryBytes), sizeCalculation: (b) => b.byteLength })
    this.#runChunks = Math.max(1, options.runChunks ?? 8)
    const fills = options.fillConcurrency ?? 2
    this.#fillSlots = fills > 0 ? new Limiter(fills) : undefined
    this.#maxQueuedFills = options.maxQueuedFills ?? 64
    this.#logger = options.logger ?? silentLogger
    this.#events = options.events ?? {}
  }

  /** Bytes `range.start..range.end` of the blob, chunk by chunk, as they become available. */
  read(blob: CacheBlob, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array> {
    const first = chunkIndex(range.start, this.chunkSize)
    const last = chunkIndex(range.end, this.chunkSize)
    let index = first
    let claimedTo = first - 1
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            signal?.throwIfAborted()
            // Claim the next window of missing chunks as one upstream request, half a window ahead.
            if (claimedTo < Math.min(last, index + (this.#runChunks >> 1))) {
              const to = Math.min(last, Math.max(claimedTo, index - 1) + this.#runChunks)
              this.#claim(blob, Math.max(index, claimedTo + 1), to, (i) => this.#readerNeeds(blob.digest, i))
              claimedTo = to
            }
            const bytes = await this.chunk(blob, index)
            if (index === first) this.fill(blob)
            const from = index === first ? range.start - index * this.chunkSize : 0
            const to = index === last ? range.end - index * this.chunkSize + 1 : bytes.byteLength
            controller.enqueue(bytes.subarray(from, to))
            if (index++ === last) controller.close()
          } catch (err) {
            controller.error(err)
          }
        },
      },
      { highWaterMark: 0 },
    )
  }

  /** One chunk: from memory, else disk, else the upstream (joining a fetch already running). */
  async chunk(blob: CacheBlob, index: number): Promise<Buffer> {
    const key = chunkKey(blob.digest, index)
    for (let attempt = 0; ; attempt++) {
      const cached = this.#memory.get(key)
      if (cached) {
        this.#events.hit?.('memory')
        return cached
      }
      const pending = this.#inflight.get(key)
      if (pending) {
        this.#events.miss?.()
        return pending
      }
      if (this.#disk.has(blob.digest, index)) {
        const bytes = await this.#disk.read(blob.digest, index)
        if (bytes) {
          this.#memory.set(key, bytes)
          this.#disk.touch(blob.digest)
          this.#events.hit?.('disk')
          return bytes
        }
      }
      if (attempt > 0 && !this.#inflight.has(key) && !this.#memory.has(key)) {
        // Claimed on the previous turn, yet nowhere: only possible if the cache is closed.
        throw new OciError('BLOB_UNKNOWN', `chunk ${index} of ${blob.digest} is unavailable`, { status: 503 })
      }
      this.#claim(blob, index, index, (i) => this.#readerNeeds(blob.digest, i))
    }
  }

  /** Schedules fetching the blob's missing chunks in the background (bounded); idempotent. */
  fill(blob: CacheBlob): void {
    const slots = this.#fillSlots
    if (!slots || this.#closed.signal.aborted || this.#fills.has(blob.digest)) return
    if (this.#disk.blob(blob.digest)?.verified || this.#fills.size >= this.#maxQueuedFills) return
    const task = slots
      .run(() => this.#fillBlob(blob))
      .catch((err) => {
        if (!this.#closed.signal.aborted) this.#logger.warn('cache fill failed', { digest: blob.digest, error: describeError(err) })
      })
      .finally(() => this.#fills.delete(blob.digest))
    this.#fills.set(blob.digest, task)
  }

  /** Puts a whole blob whose bytes were already verified against its digest (a push). */
  async putVerified(digest: Digest, size: number, bytes: AsyncIterable<Uint8Array>): Promise<void> {
    let index = 0
    let parts: Uint8Array[] = []
    let have = 0
    for await (const part of bytes) {
      for (let offset = 0; offset < part.byteLength; ) {
        const length = chunkLength(size, this.chunkSize, index)
        const take = Math.min(length - have, part.byteLength - offset)
        parts.push(part.subarray(offset, offset + take))
        have += take
        offset += take
        if (have < length) continue
        await this.#disk.write(digest, size, index++, Buffer.concat(parts, have))
        parts = []
        have = 0
      }
    }
    if (index === chunkCount(size, this.chunkSize)) await this.#disk.markVerified(digest)
  }

  /** Resolves when no fill, disk write or verification is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#fills.size + this.#writing.size + this.#verifying.size > 0) {
      await Promise.allSettled([...this.#fills.values(), ...this.#writing.values(), ...this.#verifying.values()])
    }
  }

  /** Stops fetching and waits for writes in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed.abort(new OciError('UNAVAILABLE', 'the edge is shutting down', { status: 503 }))
    await this.idle()
  }

  /** A reader fetches what is nowhere in the cache; one already fetching or on disk is joined. */
  #readerNeeds(digest: Digest, index: number): boolean {
    const key = chunkKey(digest, index)
    return !this.#memory.has(key) && !this.#inflight.has(key) && !this.#disk.has(digest, index)
  }

  /** The fill fetches what is not on disk or on its way there. */
  #fillNeeds(digest: Digest, index: number): boolean {
    const key = chunkKey(digest, index)
    return !this.#disk.has(digest, index) && !this.#inflight.has(key) && !this.#writing.has(key)
  }

  /**
   * Starts upstream requests for the chunks in first..last that `needs`, one request per run of
   * consecutive such chunks. Synchronous from check to claim, so two claims never overlap.
   */
  #claim(blob: CacheBlob, first: number, last: number, needs: (index: number) => boolean): void {
    if (this.#closed.signal.aborted) return
    let runStart = -1
    for (let i = first; i <= last + 1; i++) {
      const missing = i <= last && needs(i)
      if (missing && runStart < 0) runStart = i
      if (!missing && runStart >= 0) {
        this.#startRun(blob, runStart, i - 1)
        runStart = -1
      }
    }
  }

  #startRun(blob: CacheBlob, first: number, last: number): void {
    const waiting: Deferred[] = []
    for (let i = first; i <= last; i++) {
      const d = deferred()
      this.#inflight.set(chunkKey(blob.digest, i), d.promise)
      waiting.push(d)
    }
    void this.#fetchRun(blob, first, last, waiting)
  }

  /** One upstream range request for chunks first..last, split into chunks as bytes arrive. */
  async #fetchRun(blob: CacheBlob, first: number, last: number, waiting: Deferred[]): Promise<void> {
    const { size } = blob
    const range = { start: first * this.chunkSize, end: Math.min((last + 1) * this.chunkSize, size) - 1 }
    let index = first
    try {
      const body = await blob.source(range, this.#closed.signal)
      let parts: Uint8Array[] = []
      let have = 0
      for await (const part of body) {
        for (let offset = 0; offset < part.byteLength; ) {
          if (index > last) throw new OciError('SIZE_INVALID', `upstream sent more than bytes ${range.start}-${range.end}`, { status: 502 })
          const length = chunkLength(size, this.chunkSize, index)
          const take = Math.min(length - have, part.byteLength - offset)
          parts.push(part.subarray(offset, offset + take))
          have += take
          offset += take
          if (have === length) {
            this.#complete(blob, index, Buffer.concat(parts, have), waiting[index - first]!)
            index++
            parts = []
            have = 0
          }
        }
      }
      if (index <= last) throw new OciError('SIZE_INVALID', `upstream ended before byte ${range.end} of ${blob.digest}`, { status: 502 })
    } catch (err) {
      for (let i = index; i <= last; i++) {
        this.#inflight.delete(chunkKey(blob.digest, i))
        waiting[i - first]!.reject(err)
      }
    }
  }

  #complete(blob: CacheBlob, index: number, bytes: Buffer, waiting: Deferred): void {
    const key = chunkKey(blob.digest, index)
    this.#memory.set(key, bytes)
    this.#inflight.delete(key)
    waiting.resolve(bytes)
    const write = this.#disk
      .write(blob.digest, blob.size, index, bytes)
      .then(
        () => this.#verifyWhenComplete(blob),
        (err) => this.#logger.warn('cache write failed', { digest: blob.digest, chunk: index, error: describeError(err) }),
      )
      .finally(() => this.#writing.delete(key))
    this.#writing.set(key, write)
  }

  /** Once every chunk is on disk: hash the whole; mark it verified, or drop it all. */
  #verifyWhenComplete(blob: CacheBlob): Promise<void> {
    const { digest } = blob
    const state = this.#disk.blob(digest)
    if (!state || state.verified || state.present.size < chunkCount(blob.size, this.chunkSize)) return Promise.resolve()
    let running = this.#verifying.get(digest)
    if (!running) {
      running = this.#verify(blob).finally(() => this.#verifying.delete(digest))
      this.#verifying.set(digest, running)
    }
    return running
  }

  async #verify(blob: CacheBlob): Promise<void> {
    const actual = await this.#disk.hash(blob.digest)
    if (actual === undefined) return // a chunk was evicted meanwhile; a later fill completes it
    if (actual === blob.digest) return this.#disk.markVerified(blob.digest)
    this.#logger.warn('cached blob failed verification; dropped', { digest: blob.digest, actual })
    await this.#disk.remove(blob.digest)
    for (let i = 0; i < chunkCount(blob.size, this.chunkSize); i++) this.#memory.delete(chunkKey(blob.digest, i))
    this.#events.invalid?.(blob.digest)
  }

  async #fillBlob(blob: CacheBlob): Promise<void> {
    const count = chunkCount(blob.size, this.chunkSize)
    const needs = (i: number) => this.#fillNeeds(blob.digest, i)
    for (let cursor = 0; cursor < count && !this.#closed.signal.aborted; ) {
      while (cursor < count && !needs(cursor)) cursor++
      if (cursor >= count) break
      const last = Math.min(count - 1, cursor + this.#runChunks - 1)
      this.#claim(blob, cursor, last, needs)
      await this.#settled(blob.digest, cursor, last, true)
      cursor = last + 1
    }
    // Chunks other readers were fetching, and disk writes, finish before the blob can verify.
    await this.#settled(blob.digest, 0, count - 1, false)
    await this.#verifyWhenComplete(blob)
  }

  async #settled(digest: Digest, first: number, last: number, rethrow: boolean): Promise<void> {
    const pending: Promise<unknown>[] = []
    for (let i = first; i <= last; i++) {
      const key = chunkKey(digest, i)
      const inflight = this.#inflight.get(key)
      if (inflight) pending.push(inflight)
    }
    const results = await Promise.allSettled(pending)
    const failed = results.find((r) => r.status === 'rejected')
    if (rethrow && failed) throw failed.reason
    const writes: Promise<void>[] = []
    for (let i = first; i <= last; i++) {
      const write = this.#writing.get(chunkKey(digest, i))
      if (write) writes.push(write)
    }
    await Promise.all(writes)
  }
}

function chunkKey(digest: Digest, index: number): string {
  return `${digest}#${index}`
}

interface Deferred {
  promise: Promise<Buffer>
  resolve(bytes: Buffer): void
  reject(err: unknown): void
}

function deferred(): Deferred {
  let resolve!: (bytes: Buffer) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {}) // a fetch nobody waits for (a fill) must not be an unhandled rejection
  return { promise, resolve, reject }
}
