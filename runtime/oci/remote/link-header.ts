/**
 * The `rel="next"` target of a `Link` header (RFC 8288), as registries paginate tag lists,
 * catalogs and referrers (distribution-spec "Listing Tags", "Listing Referrers"):
 *
 *   Link: </v2/a/tags/list?n=2&last=b>; rel="next"
 *
 * Resolved against `base`, since registries send it relative.
 */
export function nextLink(header: string | undefined, base: URL): URL | undefined {
  if (!header) return undefined
  for (const m of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const params = m[2] ?? ''
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params)
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/)
    if (rels.includes('next')) {
      try {
        return new URL(m[1]!, base)
      } catch {
        return undefined
      }
    }
  }
  return undefined
}
