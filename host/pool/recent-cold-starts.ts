import type { ColdStart } from './cold-start.ts'

/** One cold start as the dashboard draws it: the `x-thaw-cold-start` figures and whose it was. */
export interface ColdStartRecord extends ColdStart {
  /** The invocation that waited for it (its first request). */
  invocationId: string
  app: string
  image: string
  node: string
  /** When its first response went out (ISO 8601). */
  time: string
}

/**
 * The host's last `max` cold starts (all apps), kept in memory for the dashboard's waterfall,
 * with listeners told of each new one (its live view). The same figures as the header.
 */
export class RecentColdStarts {
  readonly #items: ColdStartRecord[] = []
  readonly #listeners = new Set<(r: ColdStartRecord) => void>()

  constructor(readonly max = 100) {}

  add(record: Omit<ColdStartRecord, 'time'>): void {
    const r = { ...record, time: new Date().toISOString() }
    this.#items.push(r)
    if (this.#items.length > this.max) this.#items.splice(0, this.#items.length - this.max)
    for (const l of this.#listeners) l(r)
  }

  /** Newest first, at most `limit`. */
  list(limit = this.max): ColdStartRecord[] {
    return this.#items.slice(-limit).reverse()
  }

  /** Calls `listener` with each cold start from now on; returns the unsubscribe function. */
  subscribe(listener: (r: ColdStartRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
