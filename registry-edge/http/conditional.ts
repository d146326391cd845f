/**
 * Conditional requests on immutable, content-addressed resources (RFC 9110 §13). The entity tag
 * of a blob or manifest is its quoted digest (`"sha256:…"`, as distribution sends), and there is
 * no Last-Modified, so the date preconditions never hold and are not evaluated.
 *
 * Evaluation order, §13.2.2: If-Match (412 when no tag matches strongly), then If-None-Match
 * (304 for GET/HEAD when a tag matches weakly). If-Range is separate: it decides whether Range
 * applies at all (§13.1.5).
 */
export type Precondition = 'proceed' | 'not-modified' | 'failed'

export function etagOf(digest: string): string {
  return `"${digest}"`
}

export function evaluatePreconditions(headers: Headers, etag: string): Precondition {
  const ifMatch = headers.get('if-match')
  if (ifMatch !== null && !matches(ifMatch, etag, 'strong')) return 'failed'
  const ifNoneMatch = headers.get('if-none-match')
  if (ifNoneMatch !== null && matches(ifNoneMatch, etag, 'weak')) return 'not-modified'
  return 'proceed'
}

/**
 * Whether a Range header may be honoured: yes without If-Range; with one, only if it is an entity
 * tag that matches strongly. A date never matches (there is no Last-Modified to compare with).
 */
export function rangeApplies(headers: Headers, etag: string): boolean {
  const ifRange = headers.get('if-range')
  if (ifRange === null) return true
  const value = ifRange.trim()
  if (!value.startsWith('"') && !value.startsWith('W/"')) return false
  return matches(value, etag, 'strong')
}

/** `*` or a comma-separated list of entity tags (§8.8.3), compared strongly or weakly (§8.8.3.2). */
function matches(header: string, etag: string, comparison: 'strong' | 'weak'): boolean {
  if (header.trim() === '*') return true
  for (const raw of header.split(',')) {
    const candidate = raw.trim()
    const weak = candidate.startsWith('W/')
    if (weak && comparison === 'strong') continue
    if ((weak ? candidate.slice(2) : candidate) === etag) return true
  }
  return false
}
