import type { HostLogger } from '../log/host-logger.ts'
import { toHostLevel, type LogRecord, type NewLogRecord } from './log-record.ts'
import { LogFiles } from './log-files.ts'
import { LogRing, type RingBounds } from './log-ring.ts'
import { RecentInvocations } from './recent-invocations.ts'

export interface AppLogsOptions extends Partial<RingBounds> {
  /** Every record is also written to the host's own log (with its level). */
  logger?: HostLogger
  /** Finished invocations kept for the admin API (all apps). Default 1000. */
  maxInvocations?: number
  /** Where the rings are kept on disk too (AppLogs.open); without, in memory only. */
  files?: LogFiles
}

/** Per app: 2000 records or 1 MiB, whichever is reached first. */
export const DEFAULT_RING_BOUNDS: RingBounds = { maxRecords: 2000, maxBytes: 1024 * 1024 }

/** A longer message is cut here (a function printing a megabyte should not empty the ring). */
export const MAX_MESSAGE_BYTES = 8 * 1024

/**
 * The logs of a host's apps: one bounded ring per app (DEFAULT_RING_BOUNDS), numbered records
 * (`seq`, host-wide), live subscribers for `?follow=1`, and the recent invocations. Memory is
 * bounded by apps × maxBytes; a deleted app's ring is dropped (forget). Opened on a directory
 * (AppLogs.open), the rings are kept on disk too and read back at the next start.
 */
export class AppLogs {
  readonly #rings = new Map<string, LogRing>()
  readonly #bounds: RingBounds
  #seq = 0
  readonly invocations: RecentInvocations

  constructor(private readonly o: AppLogsOptions = {}) {
    this.#bounds = {
      maxRecords: o.maxRecords ?? DEFAULT_RING_BOUNDS.maxRecords,
      maxBytes: o.maxBytes ?? DEFAULT_RING_BOUNDS.maxBytes,
    }
    this.invocations = new RecentInvocations(o.maxInvocations)
  }

  /**
   * The logs kept in `dir` (`<app>.ndjson` each, host/logs/log-files.ts) read back into their
   * rings, and kept there from now on: an app's log outlives a host restart.
   */
  static async open(dir: string, o: Omit<AppLogsOptions, 'files'> = {}): Promise<AppLogs> {
    const maxBytes = o.maxBytes ?? DEFAULT_RING_BOUNDS.maxBytes
    const { files, records } = await LogFiles.open(dir, {
      compactBytes: 2 * maxBytes,
      logger: o.logger,
    })
    const logs = new AppLogs({ ...o, files })
    for (const [app, kept] of records) {
      const ring = logs.#ring(app)
      for (const r of kept) {
        ring.append(r)
        logs.#seq = Math.max(logs.#seq, r.seq)
      }
    }
    return logs
  }

  /** Numbers and keeps the record; writes it to `logger` (default: the host's log) as well. */
  append(app: string, r: NewLogRecord, logger: HostLogger | undefined = this.o.logger): LogRecord {
    const record: LogRecord = {
      seq: ++this.#seq,
      time: r.time ?? new Date().toISOString(),
      app,
      ...withoutUndefined(r),
      message: truncate(r.message),
    }
    const ring = this.#ring(app)
    ring.append(record)
    this.o.files?.append(record, () => ring.read())
    const { seq: _seq, time: _time, message, level, ...fields } = record
    logger?.log(toHostLevel(level), message, fields)
    return record
  }

  /** The app's kept records after `afterSeq` and from `sinceMs` on, oldest first. */
  read(app: string, filter: { afterSeq?: number; sinceMs?: number } = {}): LogRecord[] {
    return this.#rings.get(app)?.read(filter) ?? []
  }

  /** The app's records from now on; returns the unsubscribe function. */
  follow(app: string, listener: (r: LogRecord) => void): () => void {
    return this.#ring(app).subscribe(listener)
  }

  /** Drops the app's ring (it was deleted). Followers stay subscribed to nothing. */
  forget(app: string): void {
    this.#rings.delete(app)
    this.o.files?.forget(app)
  }

  /** The apps that have a log. */
  apps(): string[] {
    return [...this.#rings.keys()]
  }

  /** Waits until what is kept on disk is written (shutdown, tests). */
  async settled(): Promise<void> {
    await this.o.files?.settled()
  }

  #ring(app: string): LogRing {
    let ring = this.#rings.get(app)
    if (!ring) this.#rings.set(app, (ring = new LogRing(this.#bounds)))
    return ring
  }
}

function truncate(message: string): string {
  if (Buffer.byteLength(message) <= MAX_MESSAGE_BYTES) return message
  const cut = Buffer.from(message)
    .subarray(0, MAX_MESSAGE_BYTES)
    .toString('utf8')
    .replace(/\uFFFD$/, '')
  return `${cut}… (truncated)`
}

function withoutUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {}
  for (const k in o) if (o[k] !== undefined) out[k] = o[k]
  return out as T
}
