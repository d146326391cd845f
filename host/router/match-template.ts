import type { ParameterPart, RouteSegment, RouteTemplate } from './route-template.ts'

export type RouteParams = Record<string, string | null>

/**
 * Matches decoded path segments against a template. Literals compare case-insensitively; a
 * parameter needs a non-empty value that passes its constraints; an optional parameter that is
 * absent is null (as Azure's host adds it), a defaulted one gets its default; a catch-all takes the
 * rest of the path, "/" included. Returns undefined when the template does not match.
 */
export function matchTemplate(template: RouteTemplate, path: string[]): RouteParams | undefined {
  const params: RouteParams = {}
  const { segments } = template
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const only = segment.parts.length === 1 ? segment.parts[0]! : undefined
    if (only?.kind === 'parameter' && only.catchAll) {
      const rest = path.slice(i).join('/')
      if (rest === '') params[only.name] = only.defaultValue ?? null
      else if (!passes(only, rest)) return undefined
      else params[only.name] = rest
      return params
    }
    const value = path[i]
    if (value === undefined) {
      if (only?.kind !== 'parameter' || !(only.optional || only.defaultValue !== undefined)) {
        return undefined
      }
      params[only.name] = only.defaultValue ?? null
      continue
    }
    if (!matchSegment(segment, value, params)) return undefined
  }
  return path.length <= segments.length ? params : undefined
}

function passes(p: ParameterPart, value: string): boolean {
  return p.constraints.every((c) => c.test(value))
}

function matchSegment(segment: RouteSegment, value: string, params: RouteParams): boolean {
  const [first] = segment.parts
  if (segment.parts.length === 1 && first) {
    if (first.kind === 'literal') return first.text.toLowerCase() === value.toLowerCase()
    if (value === '' || !passes(first, value)) return false
    params[first.name] = value
    return true
  }
  return matchComplex(segment, value, params)
}

/**
 * A complex segment (`{name}.{ext}`, `file-{id:int}`): literals split the value, earlier
 * parameters take as much as they can (so `a.b.c` gives name=a.b, ext=c, like ASP.NET's
 * right-to-left matcher). A trailing `.{ext?}` is tried with and then without the extension.
 */
function matchComplex(segment: RouteSegment, value: string, params: RouteParams): boolean {
  const parts = segment.parts
  const last = parts[parts.length - 1]
  const tails = [parts]
  if (last?.kind === 'parameter' && (last.optional || last.defaultValue !== undefined)) {
    tails.push(parts.slice(0, -2))
  }
  for (const candidate of tails) {
    const names: ParameterPart[] = []
    const re = candidate
      .map((p) => {
        if (p.kind === 'literal') return p.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        names.push(p)
        return '(.+)'
      })
      .join('')
    const m = new RegExp(`^${re}$`, 'is').exec(value)
    if (!m || !names.every((p, k) => passes(p, m[k + 1]!))) continue
    names.forEach((p, k) => (params[p.name] = m[k + 1]!))
    if (candidate !== parts && last?.kind === 'parameter') {
      params[last.name] = last.defaultValue ?? null
    }
    return true
  }
  return false
}

/**
 * ASP.NET's inbound precedence, one digit per segment (RoutePrecedence.ComputeInbound): literal 1,
 * complex 2, constrained parameter 3, parameter 4, catch-all 5. Lower wins, compared segment by
 * segment; when one is a prefix of the other the shorter wins (`items` before `items/{id?}`).
 */
export function precedence(template: RouteTemplate): number[] {
  return template.segments.map((s) => {
    const [only] = s.parts
    if (s.parts.length > 1 || !only) return 2
    if (only.kind === 'literal') return 1
    if (only.catchAll) return 5
    return only.constraints.length > 0 ? 3 : 4
  })
}

export function comparePrecedence(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!
  }
  return a.length - b.length
}

/**
 * Two templates collide when they accept exactly the same paths: same segments, literals equal
 * ignoring case, parameters in the same places with the same constraints and optionality.
 */
export function shapeKey(template: RouteTemplate): string {
  return template.segments
    .map((s) =>
      s.parts
        .map((p) => {
          if (p.kind === 'literal') return p.text.toLowerCase().replace(/[{}]/g, '\\$&')
          const mark = p.catchAll ? '*' : p.optional || p.defaultValue !== undefined ? '?' : ''
          return `{${mark}${p.constraints.map((c) => `:${c.text}`).join('')}}`
        })
        .join(''),
    )
    .join('/')
}
