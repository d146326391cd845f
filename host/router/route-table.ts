import { RouterError, type RouterErrorCode } from './errors.ts'
import {
  comparePrecedence,
  matchTemplate,
  precedence,
  shapeKey,
  type RouteParams,
} from './match-template.ts'
import { parseRouteTemplate, type RouteTemplate } from './route-template.ts'

export type AuthLevel = 'anonymous' | 'function' | 'admin'

/** An HTTP function as the router needs it (a subset of the worker's FunctionInfo). */
export interface HttpFunctionSpec {
  name: string
  /** The route template; null or "" means the function name (HOST WebScriptHostHttpRoutesManager). */
  route: string | null
  /** Upper-case methods; null means any. */
  methods: string[] | null
  authLevel: AuthLevel
}

export interface RouteEntry {
  readonly fn: HttpFunctionSpec
  /** The full template, route prefix included, as displayed: `api/items/{id?}`. */
  readonly path: string
  readonly template: RouteTemplate
  readonly methods: ReadonlySet<string> | null
  readonly rank: number[]
}

/** A function the table refused, and why (bad template, collision, reserved path). */
export interface RouteProblem {
  function: string
  code: RouterErrorCode
  message: string
}

export type RouteMatch =
  | { kind: 'found'; entry: RouteEntry; params: RouteParams }
  | { kind: 'method-not-allowed'; allowed: string[] }
  | { kind: 'not-found' }

export interface RouteTable {
  /** Entries in match order (precedence, then registration order). */
  readonly entries: readonly RouteEntry[]
  readonly problems: readonly RouteProblem[]
  /** Matches a request; `pathname` is the raw (percent-encoded) URL path. */
  match(method: string, pathname: string): RouteMatch
}

/**
 * Azure Functions routing: `/{routePrefix}/{route ?? name}` (routePrefix from host.json
 * extensions.http.routePrefix, default "api", "" allowed), ASP.NET Core templates matched
 * case-insensitively, method constraints. A function whose route is invalid, collides with an
 * earlier one (same template, overlapping methods) or starts with the reserved `admin` segment
 * is left out and reported in `problems`; the others still route.
 */
export function createRouteTable(
  functions: readonly HttpFunctionSpec[],
  options: { routePrefix?: string } = {},
): RouteTable {
  const prefix = (options.routePrefix ?? 'api').replace(/^\/+|\/+$/g, '')
  const entries: RouteEntry[] = []
  const problems: RouteProblem[] = []
  const shapes = new Map<string, RouteEntry[]>()
  for (const fn of functions) {
    try {
      const entry = makeEntry(fn, prefix)
      const key = shapeKey(entry.template)
      const rival = (shapes.get(key) ?? []).find((e) => overlaps(e.methods, entry.methods))
      if (rival) {
        throw new RouterError(
          'ROUTE_CONFLICT',
          `The route "${entry.path}" of function "${fn.name}" conflicts with the route "${rival.path}" of function "${rival.fn.name}".`,
        )
      }
      shapes.set(key, [...(shapes.get(key) ?? []), entry])
      entries.push(entry)
    } catch (err) {
      if (!(err instanceof RouterError)) throw err
      problems.push({ function: fn.name, code: err.code, message: err.message })
    }
  }
  entries.sort((a, b) => comparePrecedence(a.rank, b.rank))
  return { entries, problems, match: (method, pathname) => match(entries, method, pathname) }
}

function makeEntry(fn: HttpFunctionSpec, prefix: string): RouteEntry {
  const route = (fn.route ?? '').trim() === '' ? fn.name : fn.route!.trim()
  const path = [prefix, route.replace(/^~?\/+/, '')].filter((s) => s !== '').join('/')
  let template: RouteTemplate
  try {
    template = parseRouteTemplate(path)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new RouterError(
      'ROUTE_INVALID',
      `The route "${route}" of function "${fn.name}" is invalid: ${message}`,
    )
  }
  const first = template.segments[0]?.parts
  if (
    first?.length === 1 &&
    first[0]!.kind === 'literal' &&
    first[0]!.text.toLowerCase() === 'admin'
  ) {
    throw new RouterError(
      'ROUTE_RESERVED',
      `The route "${path}" of function "${fn.name}" conflicts with the built-in admin routes.`,
    )
  }
  const methods =
    fn.methods && fn.methods.length > 0 ? new Set(fn.methods.map((m) => m.toUpperCase())) : null
  return { fn, path, template, methods, rank: precedence(template) }
}

function overlaps(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (!a || !b) return true
  for (const m of a) if (b.has(m)) return true
  return false
}

function match(entries: readonly RouteEntry[], method: string, pathname: string): RouteMatch {
  const segments = splitPath(pathname)
  const allowed = new Set<string>()
  const upper = method.toUpperCase()
  for (const entry of entries) {
    const params = matchTemplate(entry.template, segments)
    if (!params) continue
    if (!entry.methods || entry.methods.has(upper)) return { kind: 'found', entry, params }
    for (const m of entry.methods) allowed.add(m)
  }
  return allowed.size > 0
    ? { kind: 'method-not-allowed', allowed: [...allowed].sort() }
    : { kind: 'not-found' }
}

/**
 * Path segments, each percent-decoded except "%2F", which stays encoded as in ASP.NET Core (a
 * decoded "/" inside a segment would be indistinguishable from a separator). One trailing slash
 * is ignored; a malformed escape leaves the segment as it was.
 */
export function splitPath(pathname: string): string[] {
  const trimmed = pathname.replace(/^\/+/, '').replace(/\/$/, '')
  if (trimmed === '') return []
  return trimmed.split('/').map((s) => {
    try {
      return decodeURIComponent(s.replace(/%2F/gi, '%252F'))
    } catch {
      return s
    }
  })
}
