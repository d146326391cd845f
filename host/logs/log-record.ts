import type { LogLevel as WorkerLogLevel } from '../../runtime/protocol/worker-messages.ts'

/** The levels a function logs at (`context.trace` … `context.error`); critical counts as error. */
export type RecordLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

export const RECORD_LEVELS: readonly RecordLevel[] = ['trace', 'debug', 'info', 'warn', 'error']

/**
 * Where a record comes from: `user` (the function's context.log…), `system` (the worker or the
 * library), `stdout`/`stderr` (a process's own output: console.log in a Node.js app, anything a
 * custom handler prints), `host` (thaw itself: a failed invocation, a node that could not start).
 */
export type RecordSource = 'user' | 'system' | 'stdout' | 'stderr' | 'host'

/**
 * One log record of an app, as `GET /admin/apps/<name>/logs` and `thaw logs` show it (one JSON
 * object per record; fields that do not apply are absent):
 *
 *   {"seq":42,"time":"2026-12-03T14:01:02.345Z","app":"hello","revision":3,"node":"hello-0",
 *    "invocationId":"6f1c…","function":"hello","level":"warn","source":"user","message":"…"}
 *
 * `seq` grows by one per record on a host (across apps): a reader resumes after the last one it
 * saw (`?since=seq:42`, or SSE's Last-Event-ID).
 */
export interface LogRecord {
  seq: number
  time: string
  app: string
  revision?: number
  node?: string
  invocationId?: string
  function?: string
  level: RecordLevel
  source: RecordSource
  message: string
}

/** A record before the log numbers it: time defaults to now. */
export type NewLogRecord = Omit<LogRecord, 'seq' | 'time' | 'app'> & { time?: string }

/** The worker's RpcLogLevel as the level the function used (information → info, …). */
export function fromWorkerLevel(level: WorkerLogLevel): RecordLevel {
  switch (level) {
    case 'trace':
    case 'debug':
      return level
    case 'information':
    case 'none':
      return 'info'
    case 'warning':
      return 'warn'
    case 'error':
    case 'critical':
      return 'error'
  }
}

/** The host logger's level for a record (it has no trace). */
export function toHostLevel(level: RecordLevel): 'debug' | 'info' | 'warn' | 'error' {
  return level === 'trace' ? 'debug' : level
}
