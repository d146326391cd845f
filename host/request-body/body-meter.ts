import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { RequestBodyLimits } from './body-limits.ts'
import { bodyTimedOut, bodyTooLarge, type BodyRefusal } from './body-refusal.ts'
import { ClientClock, type ClientTooSlow } from './client-clock.ts'

/** A request body on its way to a node, counted and timed. */
export interface MeteredBody extends Readable {
  /** Why the body was refused, once it was (the stream is then destroyed with this error). */
  readonly refusal: BodyRefusal | undefined
  /**
   * Reads ahead, under the same limits, until `bytes` of the body are held (at most the stream's
   * 64 KiB high-water mark) or the whole body came; rejects as the stream fails (`refusal`, or the
   * client gone). Nothing is consumed: the stream still yields every byte. From then on the
   * stream's 'error' needs no listener (a body refused while it waits for a node is `refusal`).
   */
  readAhead(bytes: number): Promise<void>
}

/**
 * The client's body as a stream that enforces the app's limits while it is forwarded: more than
 * `maxBytes` fails it with BODY_TOO_LARGE; a client that is silent for `timeoutMs`, or slower on
 * average than `minBytesPerSecond` once `timeoutMs` has passed, fails it with BODY_TIMEOUT. Only
 * the time spent waiting for the client counts: while the node does not take the body (the
 * function has not read it yet), the clock stops, so a slow function is never blamed on its
 * client (client-clock.ts). Nothing is buffered beyond the stream's high-water mark: the client
 * is paused with the node (backpressure all the way).
 */
export function meterBody(source: IncomingMessage, limits: RequestBodyLimits): MeteredBody {
  return new BodyMeter(source, limits)
}

/**
 * Call before relaying an answer head: if the client is still sending its body (the function
 * answered without reading all of it), the connection closes after the answer. The rest is never
 * read, and a connection left with half an upload in it could carry no other request.
 */
export function closeAfterAnswerIfUnread(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete) res.setHeader('connection', 'close')
}

class BodyMeter extends Readable implements MeteredBody {
  refusal: MeteredBody['refusal']
  readonly #clock: ClientClock
  #started = false
  #complete = false
  /** Told of every change while readAhead waits. */
  #onProgress: (() => void) | undefined
  readonly #onData = (chunk: Buffer) => this.#data(chunk)
  readonly #onEnd = () => {
    this.#clock.stop()
    this.#complete = true
    this.push(null)
    this.#onProgress?.()
  }
  readonly #onAborted = () => {
    if (!this.source.complete) this.destroy(new Error('the client closed the connection mid-body'))
  }
  readonly #onError = (err: Error) => this.destroy(err)

  constructor(
    readonly source: IncomingMessage,
    readonly limits: RequestBodyLimits,
  ) {
    super({ highWaterMark: 64 * 1024 })
    this.#clock = new ClientClock(limits, (why) => this.#refuse(bodyTimedOut(slowness(why))))
  }

  readAhead(bytes: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.destroyed) return settle(this.refusal ?? this.errored ?? new Error('body closed'))
        if (this.#complete || this.readableLength >= bytes) settle()
      }
      const settle = (err?: Error) => {
        this.#onProgress = undefined
        if (err) reject(err)
        else resolve()
      }
      this.#onProgress = check
      this.on('error', () => {})
      this.read(0) // starts reading from the client, up to the high-water mark
      check()
    })
  }

  override _read(): void {
    if (!this.#started) {
      this.#started = true
      this.source.on('data', this.#onData)
      this.source.once('end', this.#onEnd)
      this.source.once('close', this.#onAborted)
      this.source.once('error', this.#onError)
    }
    this.#clock.waiting()
    this.source.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#clock.stop()
    this.source.off('data', this.#onData)
    this.source.off('end', this.#onEnd)
    this.source.off('close', this.#onAborted)
    this.source.off('error', this.#onError)
    this.source.pause()
    callback(err)
    this.#onProgress?.()
  }

  #data(chunk: Buffer) {
    this.#clock.progress(chunk.length)
    if (this.#clock.moved > this.limits.maxBytes) return this.#refuse(bodyTooLarge(this.limits))
    if (!this.push(chunk)) {
      // The node is not taking the body (yet): the client is paused, and not to blame.
      this.source.pause()
      this.#clock.notWaiting()
    }
    this.#onProgress?.()
  }

  #refuse(err: BodyRefusal) {
    this.refusal = err
    this.destroy(err)
  }
}

function slowness(why: ClientTooSlow): string {
  if (why.rule === 'silence') return `no data for ${why.timeoutMs} ms`
  return `${why.moved} bytes in ${why.waitedMs} ms, under ${why.minBytesPerSecond} bytes/s`
}
