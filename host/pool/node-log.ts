import type { InvocationEndMessage, LogMessage } from '../../runtime/protocol/worker-messages.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import { fromWorkerLevel, type NewLogRecord } from '../logs/log-record.ts'

/** What a node of an app says, turned into records of the app's log (host/logs). */
export interface NodeLog {
  /** A worker's log line (context.log…, at the level the function used). */
  worker(m: LogMessage): void
  /** A failed invocation's error, with its stack (the caller got only a bare 500). */
  invocationEnd(m: InvocationEndMessage): void
  /** An invocation that failed, and why (a custom handler's refusal, say). */
  failed(functionName: string, invocationId: string, error: string, durationMs?: number): void
  /** The node process's stdout or stderr (console.log, a custom handler's prints). */
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void
  /** A custom handler's `Logs` of one invocation. */
  handlerLogs(functionName: string, invocationId: string, lines: string[]): void
  /** thaw's own line about this node. */
  host(level: 'info' | 'warn' | 'error', message: string): void
}

/**
 * `logger` gets every record as a line as well (the host's log, through the rollout's collector
 * of a start's lines: pool.ts startNode); default: the AppLogs' own logger.
 */
export function createNodeLog(
  logs: AppLogs,
  app: string,
  node: string,
  o: { revision?: number; logger?: HostLogger } = {},
): NodeLog {
  const base = { node, revision: o.revision }
  const append = (r: NewLogRecord) => logs.append(app, r, o.logger)
  const partial = { stdout: '', stderr: '' }
  const failed: NodeLog['failed'] = (functionName, invocationId, error, durationMs) => {
    const took = durationMs === undefined ? '' : `, Duration=${Math.round(durationMs)}ms`
    append({
      ...base,
      invocationId,
      function: functionName,
      level: 'error',
      source: 'host',
      message: `Executed 'Functions.${functionName}' (Failed, Id=${invocationId}${took})\n${error}`,
    })
  }
  return {
    worker(m) {
      append({
        ...base,
        invocationId: m.invocationId,
        function: m.functionName,
        level: fromWorkerLevel(m.level),
        source: m.category === 'user' ? 'user' : 'system',
        message: m.message,
      })
    },
    invocationEnd(m) {
      if (m.outcome !== 'failed') return
      const error = m.error ? (m.error.stack ?? m.error.message) : 'no error was given'
      failed(m.functionName, m.invocationId, error, m.durationMs)
    },
    failed,
    output(stream, chunk) {
      // Whole lines only; a line cut across chunks waits for its end (at most 8 KiB of it).
      const text = partial[stream] + chunk.toString('utf8')
      const lines = text.split('\n')
      partial[stream] = lines.pop()!.slice(-8192)
      for (const line of lines) {
        const message = line.replace(/\r$/, '')
        if (message === '') continue
        // As the Functions host logs a worker's output: stdout as information, stderr as error.
        append({
          ...base,
          level: stream === 'stdout' ? 'info' : 'error',
          source: stream,
          message,
        })
      }
    },
    handlerLogs(functionName, invocationId, lines) {
      for (const message of lines) {
        append({
          ...base,
          function: functionName,
          invocationId,
          level: 'info',
          source: 'user',
          message,
        })
      }
    },
    host(level, message) {
      append({ ...base, level, source: 'host', message })
    },
  }
}
