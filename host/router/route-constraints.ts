import { RouterError } from './errors.ts'

/** One inline route constraint, e.g. `int`, `min(3)`, `regex(^a+$)`. */
export interface RouteConstraint {
  /** As written, for messages and collision keys (lower-cased name, argument kept). */
  readonly text: string
  test(value: string): boolean
}

type Factory = (arg: string | undefined, text: string) => (value: string) => boolean

const INT = /^-?\d+$/
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/
const GUID = /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[)}]?$/i

/**
 * The inline constraints of ASP.NET Core routing (RouteOptions' default constraint map:
 * https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-constraints), checked the
 * way they are there: culture-invariant, regexes case-insensitive. `datetime` accepts what
 * Date.parse accepts, a little wider than .NET.
 */
const FACTORIES: Record<string, Factory> = {
  int: () => (v) => INT.test(v) && inRange(Number(v), -(2 ** 31), 2 ** 31 - 1),
  long: () => (v) => INT.test(v) && inRange(Number(v), -(2 ** 63), 2 ** 63 - 1),
  bool: () => (v) => /^(true|false)$/i.test(v),
  datetime: () => (v) => !Number.isNaN(Date.parse(v)),
  decimal: () => (v) => NUMBER.test(v) && !/e/i.test(v),
  double: () => (v) => NUMBER.test(v),
  float: () => (v) => NUMBER.test(v),
  guid: () => (v) => GUID.test(v),
  alpha: () => (v) => /^[a-z]*$/i.test(v),
  required: () => (v) => v.length > 0,
  nonfile: () => (v) => !/\.[^./]+$/.test(v),
  file: () => (v) => /\.[^./]+$/.test(v),
  minlength: (arg, text) => {
    const n = intArg(arg, text)
    return (v) => v.length >= n
  },
  maxlength: (arg, text) => {
    const n = intArg(arg, text)
    return (v) => v.length <= n
  },
  length: (arg, text) => {
    const [a, b] = intArgs(arg, text, 1, 2)
    return b === undefined ? (v) => v.length === a : (v) => v.length >= a! && v.length <= b
  },
  min: (arg, text) => {
    const n = intArg(arg, text)
    return (v) => INT.test(v) && Number(v) >= n
  },
  max: (arg, text) => {
    const n = intArg(arg, text)
    return (v) => INT.test(v) && Number(v) <= n
  },
  range: (arg, text) => {
    const [a, b] = intArgs(arg, text, 2, 2)
    return (v) => INT.test(v) && Number(v) >= a! && Number(v) <= b!
  },
  regex: (arg, text) => {
    if (!arg) throw invalid(text, 'regex needs a pattern')
    let re: RegExp
    try {
      re = new RegExp(arg, 'i')
    } catch (err) {
      throw invalid(text, (err as Error).message)
    }
    return (v) => re.test(v)
  },
}

/** Parses `name` or `name(argument)`; an unknown name is an error, as in ASP.NET. */
export function parseConstraint(spec: string): RouteConstraint {
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\((.*)\))?$/s.exec(spec)
  if (!m) throw invalid(spec, 'expected name or name(argument)')
  const name = m[1]!.toLowerCase()
  const factory = FACTORIES[name]
  if (!factory) {
    throw new RouterError(
      'ROUTE_INVALID',
      `The constraint reference '${m[1]}' could not be resolved.`,
    )
  }
  const arg = m[2]
  const text = arg === undefined ? name : `${name}(${arg})`
  const test = factory(arg, text)
  return { text, test }
}

function inRange(n: number, lo: number, hi: number): boolean {
  return n >= lo && n <= hi
}

function intArg(arg: string | undefined, text: string): number {
  return intArgs(arg, text, 1, 1)[0]!
}

function intArgs(arg: string | undefined, text: string, min: number, max: number): number[] {
  const parts = (arg ?? '').split(',').map((s) => s.trim())
  if (parts.length < min || parts.length > max || parts.some((p) => !INT.test(p))) {
    throw invalid(text, `expected ${min === max ? min : `${min} or ${max}`} integer argument(s)`)
  }
  return parts.map(Number)
}

function invalid(text: string, why: string): RouterError {
  return new RouterError('ROUTE_INVALID', `Invalid route constraint '${text}': ${why}.`)
}
