import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import { createRouteTable, type RouteProblem, type RouteTable } from '../router/index.ts'
import type { Generation } from './generation.ts'

/** A generation with what routing needs: its route table and the functions it may run. */
export interface Served {
  readonly generation: Generation
  readonly routes: RouteTable
  /** Listed functions by lower-cased name (after the allow-list). */
  readonly functions: ReadonlyMap<string, FunctionInfo>
  /** Lower-cased names of functions disabled by `AzureWebJobs.<name>.Disabled`. */
  readonly disabled: ReadonlySet<string>
  readonly problems: readonly RouteProblem[]
}

/**
 * Builds routing for a generation: the allow-list (host.json `functions`, --functions) removes
 * functions entirely; `AzureWebJobs.<name>.Disabled=true` keeps them listed but answers 404
 * (DOCS disable-function.md).
 */
export function serve(
  generation: Generation,
  options: { routePrefix: string; allow: string[] | undefined; env: Record<string, string> },
): Served {
  const allow = options.allow?.map((n) => n.toLowerCase())
  const functions = new Map<string, FunctionInfo>()
  const disabled = new Set<string>()
  for (const fn of generation.functions) {
    const key = fn.name.toLowerCase()
    if (allow && !allow.includes(key)) continue
    functions.set(key, fn)
    const flag = Object.entries(options.env).find(
      ([k]) => k.toLowerCase() === `azurewebjobs.${key}.disabled`,
    )?.[1]
    if (flag === 'true' || flag === '1' || (fn as { disabled?: boolean }).disabled)
      disabled.add(key)
  }
  const http = [...functions.values()].filter((f) => f.trigger.toLowerCase() === 'httptrigger')
  const routes = createRouteTable(
    http.map((f) => ({
      name: f.name,
      route: f.route,
      methods: f.methods,
      authLevel: f.authLevel ?? 'function',
    })),
    { routePrefix: options.routePrefix },
  )
  const problems: RouteProblem[] = [
    ...routes.problems,
    ...generation.problems.map((p) => ({
      function: p.function,
      code: 'ROUTE_INVALID' as const,
      message: p.message,
    })),
  ]
  return { generation, routes, functions, disabled, problems }
}
