import type { LogCategory, LogLevel, WorkerMessage } from '../protocol/worker-messages.ts'
import type { AppState } from './app-state.ts'
import type { HookData } from './core-types.ts'
import { defineReadOnly } from './read-only.ts'

/** What a log knows about the invocation it belongs to, if any. */
export interface LogScope {
  invocationId?: string
  functionName?: string
  hookData?: HookData
  /** The library's InvocationContext, once getArguments() made it. */
  invocationContext?: unknown
}

export type Log = (
  level: LogLevel,
  category: LogCategory,
  message: string,
  scope?: LogScope,
) => void

/**
 * Sends logs to the host, after the app's `log` hooks (host v4.34+ behaviour, as in the worker's
 * WorkerContext.log): hooks run synchronously, may change level and message of user logs only,
 * and a hook that throws is ignored so that user code cannot silence system logs.
 */
export function createLog(state: AppState, send: (message: WorkerMessage) => void): Log {
  return (level, category, message, scope) => {
    const hooks = state.hooks.log
    if (hooks.length > 0) {
      const context = defineReadOnly({ level, message } as { level: LogLevel; message: string }, {
        category,
        hookData: scope?.hookData ?? {},
        appHookData: state.appHookData,
        invocationContext: scope?.invocationContext,
      })
      try {
        for (const hook of hooks) hook(context)
        if (category === 'user') {
          level = context.level
          message = context.message
        }
      } catch {
        // ignored on purpose, see above
      }
    }
    const out: WorkerMessage = { type: 'log', level, category, message }
    if (scope?.invocationId) out.invocationId = scope.invocationId
    if (scope?.functionName) out.functionName = scope.functionName
    send(out)
  }
}
