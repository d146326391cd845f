import type { ByteRange } from '../backend/registry-backend.ts'

/**
 * The `Range` request header, RFC 9110 §14.1–14.2:
 *
 *   Range          = ranges-specifier
 *   ranges-specifier = range-unit "=" range-set      ; range units are case-insensitive
 *   range-set      = 1#range-spec                     ; empty list elements are ignored (§5.6.1)
 *   range-spec     = int-range / suffix-range
 *   int-range      = first-pos "-" [ last-pos ]       ; last-pos >= first-pos, else invalid
 *   suffix-range   = "-" suffix-length                ; the last N bytes
 *
 * Outcomes:
 * - `full`: no header, a unit other than bytes (which a server MUST ignore, §14.2), or a request
 *   whose ranges add up to more than the blob (overlap or repetition: a broken client or a
 *   denial of service; §14.2 lets a server ignore it, and Go's http.ServeContent does the same).
 * - `partial`: the satisfiable ranges, clipped to the blob, in the order requested.
 * - `unsatisfiable`: nothing overlaps the blob (§15.5.17), or the header is malformed, or it has
 *   more than MAX_RANGES ranges (§14.2 lets a server reject these; 416 is the status for both).
 */
export type RangeRequest =
  | { kind: 'full' }
  | { kind: 'partial'; ranges: ByteRange[] }
  | { kind: 'unsatisfiable'; reason: string }

/** More ranges than this in one request is rejected (a multipart response per byte is abuse). */
export const MAX_RANGES = 100

const INT_RANGE = /^(\d+)-(\d*)$/
const SUFFIX_RANGE = /^-(\d+)$/

export function parseRangeHeader(header: string | null | undefined, size: number): RangeRequest {
  if (header === null || header === undefined) return { kind: 'full' }
  const eq = header.indexOf('=')
  if (eq < 0) return invalid('no "=" after the range unit')
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'full' }
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (specs.length === 0) return invalid('no range in the range set')
  if (specs.length > MAX_RANGES) return invalid(`more than ${MAX_RANGES} ranges`)
  const ranges: ByteRange[] = []
  for (const spec of specs) {
    const parsed = parseSpec(spec, size)
    if (parsed === 'invalid') return invalid(`malformed range "${spec.slice(0, 40)}"`)
    if (parsed) ranges.push(parsed)
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable', reason: `no range overlaps the ${size} bytes` }
  const total = ranges.reduce((sum, r) => sum + (r.end - r.start + 1), 0)
  if (ranges.length > 1 && total > size) return { kind: 'full' }
  return { kind: 'partial', ranges }
}

/** A satisfiable range, undefined for a valid but unsatisfiable one, or 'invalid'. */
function parseSpec(spec: string, size: number): ByteRange | undefined | 'invalid' {
  const int = INT_RANGE.exec(spec)
  if (int) {
    const first = safeInt(int[1]!)
    const last = int[2] === '' ? Number.MAX_SAFE_INTEGER : safeInt(int[2]!)
    if (first === undefined || last === undefined || last < first) return 'invalid'
    if (first >= size) return undefined
    return { start: first, end: Math.min(last, size - 1) }
  }
  const suffix = SUFFIX_RANGE.exec(spec)
  if (suffix) {
    const length = safeInt(suffix[1]!)
    if (length === undefined) return 'invalid'
    // §14.1.1: a suffix-range is satisfiable only with a non-zero suffix-length.
    if (length === 0 || size === 0) return undefined
    return { start: Math.max(0, size - length), end: size - 1 }
  }
  return 'invalid'
}

function safeInt(digits: string): number | undefined {
  // Positions past 2^53 cannot be in any blob; treat them as "very large" rather than invalid.
  if (digits.length > 15) return Number.MAX_SAFE_INTEGER
  return Number.parseInt(digits, 10)
}

function invalid(reason: string): RangeRequest {
  return { kind: 'unsatisfiable', reason: `invalid Range header: ${reason}` }
}

/** `Content-Range: bytes first-last/size` (RFC 9110 §14.4). */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`
}
