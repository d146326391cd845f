/**
 * `Content-Range` of a 206 (RFC 9110 section 14.4):
 *
 *   Content-Range: bytes <first>-<last>/<complete-length | *>
 *
 * Undefined for anything else (including the `bytes *\/<length>` of a 416).
 */
export interface ContentRange {
  start: number
  /** Inclusive. */
  end: number
  /** The whole representation's length; undefined for `*`. */
  size: number | undefined
}

export function parseContentRange(value: string | undefined): ContentRange | undefined {
  const m = value && /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value)
  if (!m) return undefined
  const start = Number(m[1])
  const end = Number(m[2])
  const size = m[3] === '*' ? undefined : Number(m[3])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined
  if (size !== undefined && (!Number.isSafeInteger(size) || end >= size)) return undefined
  return { start, end, size }
}
