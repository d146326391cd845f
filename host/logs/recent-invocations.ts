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

/**
 * The last `max` finished invocations of a host (all apps), newest last, with listeners told of
 * each new one (the dashboard's live view).
 */
export class RecentInvocations {
  readonly #items: InvocationRecord[] = []
  readonly #listeners = new Set<(r: InvocationRecord) => void>()

  constructor(readonly max = 1000) {}

  add(
    record: Omit<InvocationRecord, 'time' | 'outcome'> & { outcome?: InvocationRecord['outcome'] },
  ): void {
    const outcome = record.outcome ?? (record.status >= 500 ? 'failed' : 'succeeded')
    const r = { ...record, outcome, time: new Date().toISOString() }
    this.#items.push(r)
    if (this.#items.length > this.max) this.#items.splice(0, this.#items.length - this.max)
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
    for (let i = this.#items.length - 1; i >= 0 && out.length < (o.limit ?? this.max); i--) {
      const r = this.#items[i]!
      if (o.app === undefined || r.app === o.app) out.push(r)
    }
    return out
  }
}
