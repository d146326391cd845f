/**
 * The distribution-spec endpoints under /v2/, recognized from the raw (still percent-encoded)
 * path. Repository names contain slashes, so each pattern anchors on what follows the name; the
 * name part is greedy, and validated afterwards (parseRepositoryName), never used unvalidated.
 *
 *   /v2/                                       base      end-1
 *   /v2/_catalog                               catalog   (listing; not in the OCI spec)
 *   /v2/<name>/_thaw/<subpath>                 extension (thaw's routes; DS extensions/README.md)
 *   /v2/<name>/blobs/uploads/[<id>]            uploads   end-4a/4b/5/6/13
 *   /v2/<name>/blobs/<digest>                  blobs     end-2/10
 *   /v2/<name>/manifests/<reference>           manifests end-3/7/9
 *   /v2/<name>/tags/list                       tags      end-8a/8b
 *   /v2/<name>/referrers/<digest>              referrers end-12a/12b
 *
 * `_thaw` cannot be part of a name (components start with [a-z0-9]), so it is matched first.
 */
export type RouteKind =
  | 'base'
  | 'catalog'
  | 'extension'
  | 'uploads'
  | 'blobs'
  | 'manifests'
  | 'tags'
  | 'referrers'

export interface V2Route {
  kind: RouteKind
  /** Raw name from the path; validated by the dispatcher before any handler runs. */
  name?: string
  /** The tag, digest, upload id or extension subpath after the name. */
  param?: string
}

const PATTERNS: [RouteKind, RegExp][] = [
  ['extension', /^\/v2\/(.+?)\/_thaw(?:\/(.*))?$/],
  ['uploads', /^\/v2\/(.+)\/blobs\/uploads(?:\/([^/]*))?$/],
  ['blobs', /^\/v2\/(.+)\/blobs\/([^/]+)$/],
  ['manifests', /^\/v2\/(.+)\/manifests\/([^/]+)$/],
  ['tags', /^\/v2\/(.+)\/tags\/list$/],
  ['referrers', /^\/v2\/(.+)\/referrers\/([^/]+)$/],
]

export function matchV2Path(path: string): V2Route | undefined {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' }
  if (path === '/v2/_catalog') return { kind: 'catalog' }
  for (const [kind, pattern] of PATTERNS) {
    const m = pattern.exec(path)
    if (m) return { kind, name: m[1], param: m[2] ?? '' }
  }
  return undefined
}
