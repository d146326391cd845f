/** How long a transfer may wait on its client, and how slow the client may be. */
export interface ClientPaceLimits {
  /** No progress for this long while waiting on the client, or the rate below missed after it. */
  timeoutMs: number
  /** The least average rate, bytes per second, once `timeoutMs` has passed; 0 turns it off. */
  minBytesPerSecond: number
}

/** The rule a client broke: silent for `timeoutMs`, or under the rate once it had passed. */
export type ClientTooSlow =
  | { rule: 'silence'; moved: number; timeoutMs: number }
  | { rule: 'rate'; moved: number; waitedMs: number; minBytesPerSecond: number }

/**
 * The deadline of a transfer that waits on its client, after Apache's mod_reqtimeout
 * (`body=20,MinRate=500`) and nginx's client_body_timeout / send_timeout: the client gets
 * `timeoutMs`, one more second for every `minBytesPerSecond` bytes it moves, and never `timeoutMs`
 * without progress. Only time spent waiting on the client counts: the caller says when it starts
 * (`waiting()`: it needs the client to send or to take bytes) and stops (`notWaiting()`: the other
 * side is the slow one), so a slow function is never blamed on its client.
 *
 * One timer per wait, set for the earliest moment a rule could be broken; when it fires the rules
 * are checked again with the progress made meanwhile (every byte only moves the deadlines later),
 * so the data path never touches a timer. `late` is called once, with the rule broken.
 */
export class ClientClock {
  #moved = 0
  /** Time spent waiting on the client before the current wait, ms. */
  #waited = 0
  /** Since when we wait on the client (undefined: not waiting). */
  #waitingSince: number | undefined
  #lastProgress = 0
  #timer: NodeJS.Timeout | undefined
  #done = false

  constructor(
    readonly limits: ClientPaceLimits,
    private readonly late: (why: ClientTooSlow) => void,
  ) {}

  /** Bytes the client moved (sent to us, or took from us). */
  get moved(): number {
    return this.#moved
  }

  progress(bytes: number): void {
    this.#moved += bytes
    this.#lastProgress = performance.now()
  }

  waiting(): void {
    if (this.#waitingSince !== undefined || this.#done) return
    this.#waitingSince = performance.now()
    this.#arm()
  }

  notWaiting(): void {
    if (this.#waitingSince === undefined) return
    this.#waited += performance.now() - this.#waitingSince
    this.#waitingSince = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** No more checks (the transfer ended either way). Idempotent. */
  stop(): void {
    this.notWaiting()
    this.#done = true
  }

  #arm() {
    if (this.#waitingSince === undefined || this.#done) return
    const now = performance.now()
    const { timeoutMs, minBytesPerSecond } = this.limits
    const silence = now - Math.max(this.#waitingSince, this.#lastProgress)
    if (silence >= timeoutMs) return this.#late({ rule: 'silence', moved: this.#moved, timeoutMs })
    let next = timeoutMs - silence
    if (minBytesPerSecond > 0) {
      const waited = this.#waited + (now - this.#waitingSince)
      const allowed = timeoutMs + (this.#moved / minBytesPerSecond) * 1000
      if (waited >= allowed) {
        return this.#late({
          rule: 'rate',
          moved: this.#moved,
          waitedMs: Math.round(waited),
          minBytesPerSecond,
        })
      }
      next = Math.min(next, allowed - waited)
    }
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#arm(), Math.max(1, Math.ceil(next)))
    this.#timer.unref()
  }

  #late(why: ClientTooSlow) {
    this.stop()
    this.late(why)
  }
}
