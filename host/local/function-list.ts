import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import type { Served } from './served.ts'

/**
 * The function list in func start's shape (CT DisplayFunctionsInfoUtilities.cs): HTTP functions
 * first as `\t{name}: [{METHODS}] {url}`, then the others as `\t{name}: {triggerType}`, each
 * followed by a blank line; then disabled functions and functions in error.
 */
export function formatFunctionList(
  served: Served,
  baseUrl: string,
  options: { verbose?: boolean } = {},
): string {
  const lines: string[] = ['', 'Functions:', '']
  const base = baseUrl.replace(/\/$/, '')
  const byName = new Map(served.routes.entries.map((e) => [e.fn.name.toLowerCase(), e]))
  const all = [...served.functions.values()]
  const refused = new Set(served.problems.map((p) => p.function.toLowerCase()))
  const http = all.filter((f) => byName.has(f.name.toLowerCase()))
  const other = all.filter((f) => f.trigger.toLowerCase() !== 'httptrigger')
  for (const fn of http) {
    const entry = byName.get(fn.name.toLowerCase())!
    lines.push(`\t${fn.name}: ${methods(fn)} ${base}/${entry.path}`, '')
  }
  for (const fn of other) {
    lines.push(`\t${fn.name}: ${fn.trigger}`, '')
    if (options.verbose && fn.reason) lines.push(`\t\t(${fn.reason})`, '')
  }
  for (const name of served.disabled) {
    const fn = served.functions.get(name)
    if (fn) lines.push(`Function ${fn.name} is disabled.`)
  }
  if (refused.size > 0) {
    lines.push(`The following ${refused.size} functions are in error:`)
    for (const p of served.problems) lines.push(`${p.function}: ${p.message}`)
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

/** `[GET,POST]`: the methods array without quotes or spaces, upper-cased; all methods when absent. */
function methods(fn: FunctionInfo): string {
  const list = fn.methods ?? ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS']
  return `[${list.map((m) => m.toUpperCase()).join(',')}]`
}
