/**
 * Decoded frames by key, least recently used evicted first once `maxBytes` is exceeded, plus the
 * fetches in flight, so concurrent reads of one frame share one fetch (singleflight).
 */
export class FrameCache {
  readonly #maxBytes: number
  readonly #frames = new Map<string, Buffer>()
  readonly #inflight = new Map<string, Promise<Buffer>>()
  #bytes = 0

  constructor(maxBytes = 64 * 2 ** 20) {
    this.#maxBytes = maxBytes
  }

  get(key: string): Buffer | Promise<Buffer> | undefined {
    const hit = this.#frames.get(key)
    if (hit !== undefined) {
      this.#frames.delete(key)
      this.#frames.set(key, hit)
      return hit
    }
    return this.#inflight.get(key)
  }

  /** Registers a fetch; the frame is cached when it resolves, forgotten when it fails. */
  track(key: string, pending: Promise<Buffer>): Promise<Buffer> {
    this.#inflight.set(key, pending)
    pending.then(
      (frame) => {
        this.#inflight.delete(key)
        this.#put(key, frame)
      },
      () => this.#inflight.delete(key),
    )
    return pending
  }

  clear(): void {
    this.#frames.clear()
    this.#bytes = 0
  }

  #put(key: string, frame: Buffer): void {
    if (frame.length > this.#maxBytes || this.#frames.has(key)) return
    this.#frames.set(key, frame)
    this.#bytes += frame.length
    for (const [k, v] of this.#frames) {
      if (this.#bytes <= this.#maxBytes) break
      this.#frames.delete(k)
      this.#bytes -= v.length
    }
  }
}
