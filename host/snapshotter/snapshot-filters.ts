import type { SnapshotRecord } from './snapshot-store.ts'
import { SnapshotError } from './snapshot-error.ts'

/**
 * containerd's filter syntax (containerd/filters) for snapshot lists, the part snapshotters are
 * asked: `field==value`, `field!=value`, `field~=regexp` and a bare `field` (present), joined by
 * `,` (all must hold); a list of filters matches when any one does; an empty list matches all.
 * Fields: `name`, `parent`, `kind`, `labels.<key>` (a key quoted when it has dots:
 * `labels."containerd.io/snapshot.ref"==sha256:…`). Values may be quoted.
 *
 * containerd's metadata store walks its remote snapshotter with such a filter to find the
 * snapshot a remote Prepare committed (metadata/snapshot.go).
 */
export function matchesFilters(record: SnapshotRecord, filters: readonly string[]): boolean {
  const active = filters.filter((f) => f.trim() !== '')
  return active.length === 0 || active.some((f) => parseFilter(f).every((t) => t(record)))
}

type Term = (record: SnapshotRecord) => boolean

function parseFilter(filter: string): Term[] {
  return splitOutsideQuotes(filter, ',').map((term) => {
    const m = /^((?:[^=!~"]|"(?:[^"\\]|\\.)*")+?)\s*(==|!=|~=)\s*(.*)$/.exec(term.trim())
    const path = parsePath(m ? m[1]! : term.trim())
    const field = (r: SnapshotRecord) => fieldOf(r, path)
    if (!m) return (r) => field(r) !== undefined
    const value = unquote(m[3]!)
    if (m[2] === '==') return (r) => field(r) === value
    if (m[2] === '!=') return (r) => field(r) !== value
    let re: RegExp
    try {
      re = new RegExp(value)
    } catch {
      throw new SnapshotError('INVALID_ARGUMENT', `filter ${JSON.stringify(filter)}: bad regexp`)
    }
    return (r) => re.test(field(r) ?? '')
  })
}

function fieldOf(r: SnapshotRecord, path: string[]): string | undefined {
  const [first, ...rest] = path
  if (first === 'name' && rest.length === 0) return r.name
  if (first === 'parent' && rest.length === 0) return r.parent
  if (first === 'kind' && rest.length === 0) return r.kind
  if (first === 'labels' && rest.length > 0) return r.labels[rest.join('.')]
  return undefined
}

function parsePath(selector: string): string[] {
  return splitOutsideQuotes(selector, '.').map(unquote)
}

function unquote(text: string): string {
  const t = text.trim()
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) {
    try {
      return JSON.parse(t) as string
    } catch {
      return t.slice(1, -1)
    }
  }
  return t
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === '\\' && quoted) {
      current += c + (text[++i] ?? '')
      continue
    }
    if (c === '"') quoted = !quoted
    if (c === separator && !quoted) {
      parts.push(current)
      current = ''
    } else current += c
  }
  parts.push(current)
  return parts
}
