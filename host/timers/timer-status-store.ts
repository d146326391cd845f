import { z } from 'zod'
import { openJsonRecordsFile, type JsonRecordsFile } from '../os/json-records-file.ts'

/** A timer's ScheduleStatus, as Azure keeps it between runs (ISO times). */
export interface TimerStatus {
  /** The occurrence that ran last (not when it ran). */
  last?: string
  /** The occurrence due next: a host that starts after it fires at once with isPastDue. */
  next: string
  lastUpdated: string
}

export type TimerStatusStore = JsonRecordsFile<TimerStatus>

const timerStatus = z.object({
  last: z.string().optional(),
  next: z.string(),
  lastUpdated: z.string(),
})

/**
 * Timer statuses in one JSON file (host/os/json-records-file.ts), Azure's
 * `timers/<host>/<function>/status` blobs in one place. A missing or unreadable file is an
 * empty store: the timers start as if new (no past-due run).
 */
export function openTimerStatusStore(file: string): Promise<TimerStatusStore> {
  return openJsonRecordsFile(file, timerStatus)
}
