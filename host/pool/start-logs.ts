import { isThawError, ThawError } from '../../runtime/errors.ts'
import type { HostLogger } from '../log/host-logger.ts'

/** Lines kept of one start: enough for a stack trace and what led to it. */
const MAX_LINES = 60

/**
 * A logger for one node's start that passes everything on and also keeps the lines logged until
 * `stop()` (the node's output, the worker's log messages): what `thaw deploy` prints when a
 * revision fails its health gate.
 */
export function collectStartLogs(logger: HostLogger): {
  logger: HostLogger
  lines(): string[]
  stop(): void
} {
  let kept: string[] | undefined = []
  return {
    logger: {
      log(level, message, fields) {
        logger.log(level, message, fields)
        if (!kept) return
        for (const line of message.split('\n')) kept.push(line)
        if (kept.length > MAX_LINES) kept.splice(0, kept.length - MAX_LINES)
      },
    },
    lines: () => [...(kept ?? [])],
    stop: () => void (kept = undefined),
  }
}

/** A failed start's error with the node's lines (its message and code unchanged). */
export class StartFailure extends ThawError {
  constructor(
    cause: unknown,
    readonly logs: string[],
  ) {
    super(
      isThawError(cause) ? cause.code : 'NODE_START_FAILED',
      cause instanceof Error ? cause.message : String(cause),
      { fault: isThawError(cause) ? cause.fault : 'system', cause },
    )
  }
}

export function withStartLogs(err: unknown, logs: string[]): StartFailure {
  return err instanceof StartFailure ? err : new StartFailure(err, logs)
}

/** The node's lines of a start error (through AppStartError's cause), or none. */
export function startLogsOf(err: unknown): string[] {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof StartFailure) return e.logs
  return []
}
