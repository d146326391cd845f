import { RouterError } from './errors.ts'
import { parseConstraint, type RouteConstraint } from './route-constraints.ts'

export interface LiteralPart {
  kind: 'literal'
  /** The literal text, `{{`/`}}` unescaped. Compared case-insensitively. */
  text: string
}

export interface ParameterPart {
  kind: 'parameter'
  name: string
  optional: boolean
  catchAll: boolean
  defaultValue: string | undefined
  constraints: RouteConstraint[]
}

export type RoutePart = LiteralPart | ParameterPart

/** One path segment: a literal, a parameter, or a "complex" mix like `{name}.{ext?}`. */
export interface RouteSegment {
  parts: RoutePart[]
}

export interface RouteTemplate {
  /** The template as written (without leading/trailing slashes). */
  readonly text: string
  readonly segments: RouteSegment[]
  readonly parameters: ParameterPart[]
}

/**
 * Parses an ASP.NET Core route template (RoutePatternParser syntax:
 * https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-templates): literal segments,
 * `{name}`, `{name?}`, `{name=default}`, `{name:c1:c2(arg)}`, `{*rest}`/`{**rest}` catch-alls,
 * complex segments (`{name}.{ext?}`), and `{{`/`}}` for literal braces. Errors say what is wrong
 * in ASP.NET's words where it has them.
 */
export function parseRouteTemplate(template: string): RouteTemplate {
  const text = template.replace(/^~?\//, '').replace(/\/$/, '')
  const segments: RouteSegment[] = []
  if (text !== '') {
    const raw = splitSegments(text)
    raw.forEach((s, i) => segments.push(parseSegment(s, i === raw.length - 1)))
  }
  const parameters = segments.flatMap((s) =>
    s.parts.filter((p): p is ParameterPart => p.kind === 'parameter'),
  )
  checkNames(parameters)
  checkOptionalOrder(segments)
  return { text, segments, parameters }
}

/** Splits on "/" outside braces (a regex constraint may contain "/"). */
function splitSegments(text: string): string[] {
  const out: string[] = []
  let depth = 0
  let current = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (depth === 0 && (text.startsWith('{{', i) || text.startsWith('}}', i))) {
      current += text.slice(i, i + 2)
      i++
      continue
    }
    if (c === '{') depth++
    else if (c === '}') depth = Math.max(0, depth - 1)
    if (c === '/' && depth === 0) {
      if (current === '')
        fail("The route template separator character '/' cannot appear consecutively.")
      out.push(current)
      current = ''
    } else current += c
  }
  if (depth !== 0) fail('There is an incomplete parameter in the route template.')
  out.push(current)
  return out
}

function parseSegment(raw: string, isLast: boolean): RouteSegment {
  const parts: RoutePart[] = []
  let i = 0
  let literal = ''
  while (i < raw.length) {
    if (raw.startsWith('{{', i) || raw.startsWith('}}', i)) {
      literal += raw[i]
      i += 2
    } else if (raw[i] === '{') {
      if (literal) parts.push(literalPart(literal))
      literal = ''
      const end = parameterEnd(raw, i)
      parts.push(
        parseParameter(
          raw
            .slice(i + 1, end)
            .replace(/\{\{/g, '{')
            .replace(/\}\}/g, '}'),
        ),
      )
      i = end + 1
    } else if (raw[i] === '}') {
      fail(`There is an incomplete parameter in the route template segment '${raw}'.`)
    } else literal += raw[i++]
  }
  if (literal) parts.push(literalPart(literal))
  checkSegment(raw, parts, isLast)
  return { parts }
}

/** Index of the "}" closing the parameter that opens at `start`; "{{" and "}}" inside are escapes. */
function parameterEnd(raw: string, start: number): number {
  for (let i = start + 1; i < raw.length; i++) {
    if (raw.startsWith('}}', i) || raw.startsWith('{{', i)) i++
    else if (raw[i] === '}') return i
    else if (raw[i] === '{') break
  }
  return fail(`There is an incomplete parameter in the route template segment '${raw}'.`)
}

function literalPart(text: string): LiteralPart {
  if (text.includes('?')) {
    fail(
      `The literal section '${text}' is invalid. Literal sections cannot contain the '?' character.`,
    )
  }
  return { kind: 'literal', text }
}

/** `[*|**]name(:constraint)*[?|=default]`; a constraint's argument may hold any characters. */
function parseParameter(body: string): ParameterPart {
  let i = 0
  const catchAll = body.startsWith('*')
  if (catchAll) i = body.startsWith('**') ? 2 : 1
  const nameEnd = body.slice(i).search(/[:?=]/)
  const name = nameEnd === -1 ? body.slice(i) : body.slice(i, i + nameEnd)
  if (!/^[^/{}*?=:.]+$/.test(name) || /^\s|\s$/.test(name)) {
    fail(`The route parameter name '${name}' is invalid.`)
  }
  i += name.length
  const constraints: RouteConstraint[] = []
  while (body[i] === ':') {
    const start = ++i
    while (i < body.length && /[A-Za-z0-9]/.test(body[i]!)) i++
    if (body[i] === '(') i = argumentEnd(body, i) + 1
    constraints.push(parseConstraint(body.slice(start, i)))
  }
  let optional = false
  let defaultValue: string | undefined
  if (body[i] === '?' && i === body.length - 1) {
    optional = true
  } else if (body[i] === '=') {
    defaultValue = body.slice(i + 1)
    if (defaultValue.endsWith('?')) fail('An optional parameter cannot have default value.')
  } else if (i !== body.length) {
    fail(`The route parameter '${body}' has an invalid format.`)
  }
  if (catchAll && optional) fail('A catch-all parameter cannot be marked optional.')
  return { kind: 'parameter', name, optional, catchAll, defaultValue, constraints }
}

/** Matching ")" for the "(" at `open`, counting nesting and skipping backslash escapes. */
function argumentEnd(body: string, open: number): number {
  let depth = 0
  for (let i = open; i < body.length; i++) {
    if (body[i] === '\\') i++
    else if (body[i] === '(') depth++
    else if (body[i] === ')' && --depth === 0) return i
  }
  return fail(`The constraint in '${body}' has an unbalanced parenthesis.`)
}

function checkSegment(raw: string, parts: RoutePart[], isLast: boolean): void {
  const params = parts.filter((p): p is ParameterPart => p.kind === 'parameter')
  if (params.some((p) => p.catchAll)) {
    if (parts.length > 1) {
      fail(
        'A path segment that contains more than one section, such as a literal section or a parameter, cannot contain a catch-all parameter.',
      )
    }
    if (!isLast)
      fail('A catch-all parameter can only appear as the last segment of the route template.')
  }
  for (let k = 1; k < parts.length; k++) {
    if (parts[k]!.kind === 'parameter' && parts[k - 1]!.kind === 'parameter') {
      fail(
        `A path segment cannot contain two consecutive parameters. They must be separated by a '/' or by a literal string (in '${raw}').`,
      )
    }
  }
  if (parts.length > 1) {
    parts.forEach((p, k) => {
      if (p.kind !== 'parameter' || !(p.optional || p.defaultValue !== undefined)) return
      const prev = parts[k - 1]
      if (k !== parts.length - 1 || prev?.kind !== 'literal' || !prev.text.endsWith('.')) {
        fail(
          `An optional parameter must be at the end of the segment. In the segment '${raw}', optional parameter '${p.name}' is preceded by '${prev?.kind === 'literal' ? prev.text : ''}'.`,
        )
      }
    })
  }
}

function checkNames(params: ParameterPart[]): void {
  const seen = new Set<string>()
  for (const p of params) {
    const key = p.name.toLowerCase()
    if (seen.has(key)) {
      fail(`The route parameter name '${p.name}' appears more than one time in the route template.`)
    }
    seen.add(key)
  }
}

/** A segment that may be absent must not be followed by one that must be there. */
function checkOptionalOrder(segments: RouteSegment[]): void {
  let optionalSeen: string | undefined
  for (const s of segments) {
    const only = s.parts.length === 1 ? s.parts[0] : undefined
    const canBeAbsent =
      only?.kind === 'parameter' &&
      (only.optional || only.catchAll || only.defaultValue !== undefined)
    if (canBeAbsent) optionalSeen ??= (only as ParameterPart).name
    else if (optionalSeen) {
      fail(
        `The optional parameter '${optionalSeen}' can only be followed by other optional parameters.`,
      )
    }
  }
}

function fail(message: string): never {
  throw new RouterError('ROUTE_INVALID', message)
}
