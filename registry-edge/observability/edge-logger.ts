/**
 * Structured logs: one JSON object per line, each with time, level, msg and the edge's region.
 * Injected into the edge, so tests capture lines and the CLI writes them to stdout.
 */
export interface EdgeLogger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export interface JsonLoggerOptions {
  region: string
  /** Where lines go; default process.stdout. */
  write?: (line: string) => void
}

/**
 * @example
 *   const logger = jsonLogger({ region: 'eu-west' })
 *   logger.info('listening', { url })  // {"time":"…","level":"info","msg":"listening","region":"eu-west","url":"…"}
 */
export function jsonLogger(options: JsonLoggerOptions): EdgeLogger {
  const write = options.write ?? ((line: string) => void process.stdout.write(line))
  const log = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => {
    const entry = { time: new Date().toISOString(), level, msg, region: options.region, ...fields }
    write(`${JSON.stringify(entry)}\n`)
  }
  return { info: log('info'), warn: log('warn'), error: log('error') }
}

export const silentLogger: EdgeLogger = { info() {}, warn() {}, error() {} }
