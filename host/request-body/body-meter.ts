import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { RequestBodyLimits } from './body-limits.ts'
import { bodyTimedOut, bodyTooLarge, type BodyRefusal } from './body-refusal.ts'

/** A request body on its way to a node, counted and timed. */
export interface MeteredBody extends Readable {
  /** Why the body was refused, once it was (the stream is then destroyed with this error). */
  readonly refusal: BodyRefusal | undefined
}

/**
 * The client's body as a stream that enforces the app's limits while it is forwarded: more than
 * `maxBytes` fails it with BODY_TOO_LARGE; a client that is silent for `timeoutMs`, or slower on
 * average than `minBytesPerSecond` once `timeoutMs` has passed, fails it with BODY_TIMEOUT. Only
 * the time spent waiting for the client counts: while the node does not take the body (the
 * function has not read it yet), the clock stops, so a slow function is never blamed on its
 * client. Nothing is buffered beyond the stream's high-water mark: the client is paused with the
 * node (backpressure all the way).
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
  #received = 0
  /** Time spent waiting for the client before the current wait, ms. */
  #waited = 0
  /** Since when we wait for the client (undefined: the consumer is full, the client paused). */
  #waitingSince: number | undefined
  #lastByte = 0
  #timer: NodeJS.Timeout | undefined
  #started = false
  readonly #onData = (chunk: Buffer) => this.#data(chunk)
  readonly #onEnd = () => {
    this.#stopWaiting()
    this.push(null)
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
  }

  override _read(): void {
    if (!this.#started) {
      this.#started = true
      this.source.on('data', this.#onData)
      this.source.once('end', this.#onEnd)
      this.source.once('close', this.#onAborted)
      this.source.once('error', this.#onError)
    }
    this.#startWaiting()
    this.source.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer)
    this.source.off('data', this.#onData)
    this.source.off('end', this.#onEnd)
    this.source.off('close', this.#onAborted)
    this.source.off('error', this.#onError)
    this.source.pause()
    callback(err)
  }

  #data(chunk: Buffer) {
    this.#received += chunk.length
    this.#lastByte = performance.now()
    if (this.#received > this.limits.maxBytes) return this.#refuse(bodyTooLarge(this.limits))
    if (!this.push(chunk)) {
      this.source.pause()
      this.#stopWaiting()
    }
  }

  #refuse(err: BodyRefusal) {
    this.refusal = err
    this.destroy(err)
  }

  #startWaiting() {
    if (this.#waitingSince !== undefined) return
    this.#waitingSince = performance.now()
    this.#arm()
  }

  #stopWaiting() {
    if (this.#waitingSince === undefined) return
    this.#waited += performance.now() - this.#waitingSince
    this.#waitingSince = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /**
   * One timer per wait, set for the earliest moment a rule could be broken; when it fires the
   * rules are checked again with what arrived meanwhile (every byte only moves the deadlines
   * later), so the data path never touches a timer.
   */
  #arm() {
    if (this.#waitingSince === undefined) return
    const now = performance.now()
    const { timeoutMs, minBytesPerSecond } = this.limits
    const silentFrom = Math.max(this.#waitingSince, this.#lastByte)
    const silence = now - silentFrom
    if (silence >= timeoutMs) return this.#refuse(bodyTimedOut(`no data for ${timeoutMs} ms`))
    let next = timeoutMs - silence
    if (minBytesPerSecond > 0) {
      const waited = this.#waited + (now - this.#waitingSince)
      const allowed = timeoutMs + (this.#received / minBytesPerSecond) * 1000
      if (waited >= allowed) {
        const why = `${this.#received} bytes in ${Math.round(waited)} ms, under ${minBytesPerSecond} bytes/s`
        return this.#refuse(bodyTimedOut(why))
      }
      next = Math.min(next, allowed - waited)
    }
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#arm(), Math.max(1, Math.ceil(next)))
    this.#timer.unref()
  }
}
