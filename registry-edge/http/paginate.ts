import { OciError } from '../../runtime/oci/index.ts'

export interface Page {
  items: string[]
  /** `Link` header for the next page (RFC 8288), when there is one. */
  link?: string
}

/**
 * `?n=<int>&last=<item>` pagination over a sorted list (distribution-spec end-8b, "Listing Tags":
 * results are in lexical order, start after `last`, hold at most `n` entries, and a `Link:
 * <url>; rel="next"` header says where the rest is). Without `n` everything after `last` is
 * returned. `n` that is not a non-negative integer is a 400.
 */
export function paginate(sorted: string[], url: URL): Page {
  const last = url.searchParams.get('last')
  const nText = url.searchParams.get('n')
  if (nText !== null && !/^\d{1,9}$/.test(nText)) {
    throw new OciError('UNSUPPORTED', `n must be a non-negative integer, not ${JSON.stringify(nText.slice(0, 20))}`, {
      status: 400,
    })
  }
  const after = last === null ? sorted : sorted.filter((item) => item > last)
  if (nText === null) return { items: after }
  const n = Number(nText)
  const items = after.slice(0, n)
  if (after.length <= n || items.length === 0) return { items }
  const next = new URL(url.pathname, 'http://edge')
  next.searchParams.set('n', String(n))
  next.searchParams.set('last', items[items.length - 1]!)
  return { items, link: `<${next.pathname}${next.search}>; rel="next"` }
}
