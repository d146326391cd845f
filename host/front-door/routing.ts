import { createRouteTable, type HttpFunctionSpec, type RouteTable } from '../router/index.ts'

/** What the front door knows of an app's functions: its routes and which of them are off. */
export interface Routing {
  readonly routes: RouteTable
  /** Lower-cased names of functions disabled by `AzureWebJobs.<name>.Disabled` (404 but to the master key). */
  readonly disabled: ReadonlySet<string>
  /** host.json extensions.http.customHeaders, added to every function answer. */
  readonly customHeaders: Readonly<Record<string, string>>
}

export interface RoutingInput {
  functions: readonly (HttpFunctionSpec & { disabled?: boolean })[]
  routePrefix: string
  /** App settings (or the local environment): `AzureWebJobs.<name>.Disabled` turns a function off. */
  settings: Readonly<Record<string, string | undefined>>
  customHeaders?: Readonly<Record<string, string>>
}

/**
 * The routing of one running copy of an app, built once per copy (a generation of `thaw start`,
 * the image and settings a host's node runs), never per request. A function is disabled by
 * `AzureWebJobs.<name>.Disabled` = true or 1 (DOCS disable-function.md), or by the function's own
 * `disabled` (function.json).
 */
export function createRouting(input: RoutingInput): Routing {
  const off = disabledBySettings(input.settings)
  const disabled = new Set<string>()
  for (const fn of input.functions)
    if (fn.disabled || off(fn.name)) disabled.add(fn.name.toLowerCase())
  return {
    routes: createRouteTable(input.functions, { routePrefix: input.routePrefix }),
    disabled,
    customHeaders: { ...input.customHeaders },
  }
}

/** Whether `AzureWebJobs.<name>.Disabled` (any case) is true or 1 in the settings. */
export function disabledBySettings(
  settings: Readonly<Record<string, string | undefined>>,
): (functionName: string) => boolean {
  const flags = new Map<string, string | undefined>()
  for (const [k, v] of Object.entries(settings)) flags.set(k.toLowerCase(), v)
  return (name) => {
    const flag = flags.get(`azurewebjobs.${name.toLowerCase()}.disabled`)
    return flag === 'true' || flag === '1'
  }
}
