import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import type { AuthLevel, FunctionInfo } from '../../runtime/protocol/worker-messages.ts'

/** A function of a custom-handler app, read from `<name>/function.json`. */
export interface FunctionJsonFunction extends FunctionInfo {
  /** The trigger binding's name: the key of its value in the payload's Data. */
  triggerName: string
  /** The http output binding's name (`res`, or `$return`), if any. */
  httpOutput: string | undefined
  /** Exactly one httpTrigger input and one http output (HOST FunctionMetadataExtensions.IsHttpInAndOutFunction). */
  httpInAndOut: boolean
  disabled: boolean
}

export interface FunctionJsonProblem {
  function: string
  message: string
}

const binding = z.looseObject({
  type: z.string().min(1),
  direction: z.enum(['in', 'out', 'inout']).optional(),
  name: z.string().min(1),
  methods: z.array(z.string()).optional(),
  route: z.string().optional(),
  authLevel: z.string().optional(),
})
const functionJson = z.looseObject({
  bindings: z.array(binding).min(1),
  disabled: z.union([z.boolean(), z.string()]).optional(),
})

/** Triggers a thaw host serves (see runtime/worker/function-info.ts). */
const SERVED = new Set(['httptrigger', 'warmuptrigger', 'timertrigger'])

/**
 * Every `<dir>/function.json` directly under the script root (the classic layout custom handlers
 * use). A folder whose function.json is unreadable or has no single trigger is reported, not
 * dropped silently. HTTP triggers default to authLevel `function` and any method, as function.json
 * does in Azure.
 */
export async function readFunctionJsonDir(
  scriptRoot: string,
): Promise<{ functions: FunctionJsonFunction[]; problems: FunctionJsonProblem[] }> {
  const functions: FunctionJsonFunction[] = []
  const problems: FunctionJsonProblem[] = []
  const entries = await readdir(scriptRoot, { withFileTypes: true })
  for (const entry of entries
    .filter((e) => e.isDirectory())
    .sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    let text: string
    try {
      text = await readFile(join(scriptRoot, entry.name, 'function.json'), 'utf8')
    } catch {
      continue
    }
    try {
      functions.push(toFunction(entry.name, JSON.parse(text)))
    } catch (err) {
      problems.push({ function: entry.name, message: (err as Error).message })
    }
  }
  return { functions, problems }
}

function toFunction(name: string, json: unknown): FunctionJsonFunction {
  const parsed = functionJson.safeParse(json)
  if (!parsed.success) throw new Error(`function.json: ${z.prettifyError(parsed.error)}`)
  const bindings = parsed.data.bindings
  const triggers = bindings.filter((b) => /trigger$/i.test(b.type))
  const [trigger] = triggers
  if (!trigger || triggers.length > 1)
    throw new Error('function.json must have exactly one trigger binding')
  const http = trigger.type.toLowerCase() === 'httptrigger'
  const outputs = bindings.filter((b) => b.direction === 'out')
  const httpOut = outputs.find((b) => b.type.toLowerCase() === 'http')
  const inputs = bindings.filter((b) => b.direction !== 'out')
  const served = SERVED.has(trigger.type.toLowerCase())
  const info: FunctionJsonFunction = {
    name,
    trigger: trigger.type,
    methods: http && trigger.methods ? trigger.methods.map((m) => m.toUpperCase()) : null,
    route: http ? (trigger.route ?? null) : null,
    authLevel: http ? authLevel(trigger.authLevel) : null,
    servable: served,
    bindings: Object.fromEntries(bindings.map((b) => [b.name, b])),
    triggerName: trigger.name,
    httpOutput: httpOut?.name,
    httpInAndOut: http && inputs.length === 1 && outputs.length === 1 && httpOut !== undefined,
    disabled: parsed.data.disabled === true || parsed.data.disabled === 'true',
  }
  if (!served) {
    info.reason = `thaw has no event source for "${trigger.type}"; the function runs only when invoked`
  }
  return info
}

function authLevel(value: string | undefined): AuthLevel {
  const v = value?.toLowerCase()
  return v === 'anonymous' || v === 'admin' ? v : 'function'
}
