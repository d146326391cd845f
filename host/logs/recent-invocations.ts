/** How an invocation came: an HTTP request, a timer, or the admin API (`POST …/functions/<name>`). */
export type InvocationTrigger = 'http' | 'timer' | 'admin'

/**
 * One finished invocation, as `GET /admin/invocations` lists it:
 *
 *   {"id":"6f1c…","app":"hello","function":"hello","trigger":"http","status":200,
 *    "outcome":"succeeded","durationMs":4.2,"cold":false,"node":"hello-0",
 *    "time":"2026-12-03T14:01:02.345Z"}
 *
 * `status` is the HTTP status answered (for timer and admin runs: 200, or 500 when it failed);
 * `cold` is true when the invocation was its node's first (it waited for the cold start);
 * `time` is when it ended.
 */
export interface InvocationRecord {
  id: string
  app: string
  function: string
  trigger: InvocationTrigger
  status: number
  outcome: 'succeeded' | 'failed'
  durationMs: number
  cold: boolean
  node?: string
  revision?: number
  time: string
}

type Finished = Omit<InvocationRecord, 'time'> & { readonly endedAt: number }

/**
 * The last `max` finished invocations of a host (all apps), newest last, with listeners told of
 * each new one (the dashboard's live view). A ring: adding one is O(1) on the request path (no
 * array shifted); `time` is formatted when listed, or when a listener is told.
 */
export class RecentInvocations {
  readonly #items: (Finished | undefined)[]
  /** Where the next one goes; the oldest kept is here once the ring is full. */
  #next = 0
  #size = 0
  readonly #listeners = new Set<(r: InvocationRecord) => void>()

  constructor(readonly max = 1000) {
    this.#items = new Array<Finished | undefined>(Math.max(0, max))
  }

  add(
    record: Omit<InvocationRecord, 'time' | 'outcome'> & { outcome?: InvocationRecord['outcome'] },
  ): void {
    const outcome = record.outcome ?? (record.status >= 500 ? 'failed' : 'succeeded')
    const finished = { ...record, outcome, endedAt: Date.now() }
    if (this.max >= 1) {
      this.#items[this.#next] = finished
      this.#next = (this.#next + 1) % this.max
      if (this.#size < this.max) this.#size++
    }
    if (this.#listeners.size === 0) return
    const r = withTime(finished)
    for (const l of this.#listeners) l(r)
  }

  /** Calls `listener` with each invocation from now on; returns the unsubscribe function. */
  subscribe(listener: (r: InvocationRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Newest first; only `app`'s when given; at most `limit`. */
  list(o: { app?: string; limit?: number } = {}): InvocationRecord[] {
    const out: InvocationRecord[] = []
    const limit = o.limit ?? this.max
    for (let i = 1; i <= this.#size && out.length < limit; i++) {
      const r = this.#items[(this.#next - i + this.max) % this.max]!
      if (o.app === undefined || r.app === o.app) out.push(withTime(r))
    }
    return out
  }
}

function withTime({ endedAt, ...r }: Finished): InvocationRecord {
  return { ...r, time: new Date(endedAt).toISOString() }
}
