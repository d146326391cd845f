import type { AuthLevel, FunctionInfo } from '../protocol/worker-messages.ts'
import type { RegisteredFunction } from './app-state.ts'

/**
 * Triggers thaw's hosts serve: HTTP routes, warmup at /admin/warmup (HOST
 * WebScriptHostHttpRoutesManager), and timers (host/timers).
 */
const SERVED_TRIGGERS = new Set(['httptrigger', 'warmuptrigger', 'timertrigger'])

export function isHttpTrigger(fn: RegisteredFunction): boolean {
  return fn.trigger.type.toLowerCase() === 'httptrigger'
}

/**
 * What the host needs to know about a function, read from its trigger binding: the library
 * spreads the trigger options (methods, authLevel, route) onto the binding
 * (toCoreFunctionMetadata.ts). Non-HTTP triggers are listed too, marked as not served.
 */
export function describeFunction(fn: RegisteredFunction): FunctionInfo {
  const b = fn.trigger.binding
  const http = isHttpTrigger(fn)
  const served = SERVED_TRIGGERS.has(fn.trigger.type.toLowerCase())
  const info: FunctionInfo = {
    name: fn.metadata.name,
    trigger: fn.trigger.type,
    methods:
      http && Array.isArray(b.methods) ? b.methods.map((m) => String(m).toUpperCase()) : null,
    route: http && typeof b.route === 'string' ? b.route : null,
    authLevel: http ? authLevel(b.authLevel) : null,
    servable: served,
    bindings: fn.metadata.bindings,
  }
  if (!served) {
    info.reason =
      `thaw has no event source for "${fn.trigger.type}"; the function runs only when invoked ` +
      `(POST /admin/functions/${fn.metadata.name}, or invoke() in tests)`
  }
  return info
}

/** Absent or unknown levels are `function`, the HttpTrigger default of the host. */
function authLevel(value: unknown): AuthLevel {
  const v = typeof value === 'string' ? value.toLowerCase() : ''
  return v === 'anonymous' || v === 'admin' ? v : 'function'
}
