export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Structured logs of the host: one event, a message and fields (app, node, timings…). */
export interface HostLogger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void
}

/** One JSON object per line (`{"time","level","msg",...fields}`), to `write`. */
export function jsonHostLogger(
  write: (line: string) => void = (l) => void process.stdout.write(l),
  minLevel: LogLevel = 'info',
): HostLogger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error']
  const min = order.indexOf(minLevel)
  return {
    log(level, msg, fields) {
      if (order.indexOf(level) < min) return
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`)
    },
  }
}

export const silentHostLogger: HostLogger = { log() {} }
