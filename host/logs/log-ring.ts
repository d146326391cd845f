import type { LogRecord } from './log-record.ts'

export interface RingBounds {
  /** At most this many records. */
  maxRecords: number
  /** At most this many bytes of messages (UTF-8, plus a fixed cost per record). */
  maxBytes: number
}

/** What one record costs besides its message: its other fields, roughly. */
const RECORD_OVERHEAD = 128

/**
 * The most recent records of one app, bounded by count and by bytes: appending past either
 * bound drops the oldest records first. A record larger than the byte bound on its own is kept
 * (alone); callers truncate messages before they get here (AppLogs does, at 8 KiB).
 */
export class LogRing {
  readonly #records: LogRecord[] = []
  #start = 0
  #bytes = 0
  readonly #listeners = new Set<(r: LogRecord) => void>()

  constructor(readonly bounds: RingBounds) {}

  get size(): number {
    return this.#records.length - this.#start
  }

  /** Bytes the kept records count for (see RECORD_OVERHEAD). */
  get bytes(): number {
    return this.#bytes
  }

  append(record: LogRecord): void {
    this.#records.push(record)
    this.#bytes += cost(record)
    while (
      this.size > 1 &&
      (this.size > this.bounds.maxRecords || this.#bytes > this.bounds.maxBytes)
    ) {
      this.#bytes -= cost(this.#records[this.#start]!)
      this.#start++
    }
    // Compact now and then, so dropping stays O(1) amortized.
    if (this.#start > 1024 && this.#start * 2 > this.#records.length) {
      this.#records.splice(0, this.#start)
      this.#start = 0
    }
    for (const l of this.#listeners) l(record)
  }

  /** The kept records with seq > afterSeq and time ≥ sinceMs, oldest first. */
  read(filter: { afterSeq?: number; sinceMs?: number } = {}): LogRecord[] {
    const out: LogRecord[] = []
    for (let i = this.#start; i < this.#records.length; i++) {
      const r = this.#records[i]!
      if (filter.afterSeq !== undefined && r.seq <= filter.afterSeq) continue
      if (filter.sinceMs !== undefined && Date.parse(r.time) < filter.sinceMs) continue
      out.push(r)
    }
    return out
  }

  /** Every record appended from now on; returns the unsubscribe function. */
  subscribe(listener: (r: LogRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }
}

function cost(r: LogRecord): number {
  return Buffer.byteLength(r.message) + RECORD_OVERHEAD
}
