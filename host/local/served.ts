import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import { createRouting, disabledBySettings, type Routing } from '../front-door/routing.ts'
import type { RouteProblem, RouteTable } from '../router/index.ts'
import type { Generation } from './generation.ts'

/** A generation with what routing needs: its route table and the functions it may run. */
export interface Served {
  readonly generation: Generation
  /** What the request pipeline routes by (routes, disabled functions, customHeaders). */
  readonly routing: Routing
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
 * (front-door/routing.ts, the same rule as the host's).
 */
export function serve(
  generation: Generation,
  options: {
    routePrefix: string
    allow: string[] | undefined
    env: Record<string, string>
    customHeaders?: Record<string, string>
  },
): Served {
  const allow = options.allow?.map((n) => n.toLowerCase())
  const functions = new Map<string, FunctionInfo>()
  for (const fn of generation.functions) {
    const key = fn.name.toLowerCase()
    if (allow && !allow.includes(key)) continue
    functions.set(key, fn)
  }
  const http = [...functions.values()].filter((f) => f.trigger.toLowerCase() === 'httptrigger')
  const routing = createRouting({
    functions: http.map((f) => ({
      name: f.name,
      route: f.route,
      methods: f.methods,
      authLevel: f.authLevel ?? 'function',
      disabled: (f as { disabled?: boolean }).disabled,
    })),
    routePrefix: options.routePrefix,
    settings: options.env,
    customHeaders: options.customHeaders,
  })
  // Listed as disabled: non-HTTP functions too (the routing knows only HTTP ones).
  const off = disabledBySettings(options.env)
  const disabled = new Set(routing.disabled)
  for (const key of functions.keys()) if (off(key)) disabled.add(key)
  const problems: RouteProblem[] = [
    ...routing.routes.problems,
    ...generation.problems.map((p) => ({
      function: p.function,
      code: 'ROUTE_INVALID' as const,
      message: p.message,
    })),
  ]
  return { generation, routing, routes: routing.routes, functions, disabled, problems }
}
