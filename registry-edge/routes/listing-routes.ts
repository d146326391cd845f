import type { Context } from 'hono'
import { OciError, MediaType, parseDigest } from '../../runtime/oci/index.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { jsonResponse } from '../http/http-errors.ts'
import { paginate } from '../http/paginate.ts'
import type { RouteDeps, RouteHandler } from './route-deps.ts'

/** GET /v2/<name>/tags/list[?n=&last=] (end-8a/8b): `{name, tags}`, lexically sorted, paged. */
export const listTags: RouteHandler = async (c, { repository }, { backend }) => {
  const tags = await backend.listTags(repository)
  if (!tags) throw new OciError('NAME_UNKNOWN', `repository ${repository} is not known`)
  const page = paginate(tags, new URL(c.req.url))
  return jsonResponse({ name: repository, tags: page.items }, 200, page.link ? { link: page.link } : {})
}

/**
 * GET /v2/_catalog[?n=&last=]: `{repositories}`, paged like tags. With auth on, only the
 * repositories the caller's user (or anonymous) may pull are listed.
 */
export async function listCatalog(c: Context<EdgeEnv>, deps: RouteDeps): Promise<Response> {
  let repositories = await deps.backend.listRepositories()
  const { policy } = deps
  if (policy) {
    const subject = c.get('principal').subject
    repositories = repositories.filter((r) => policy.grants(subject, r).has('pull'))
  }
  const page = paginate(repositories, new URL(c.req.url))
  return jsonResponse({ repositories: page.items }, 200, page.link ? { link: page.link } : {})
}

/**
 * GET /v2/<name>/referrers/<digest>[?artifactType=] (end-12a/12b): an image index of the
 * manifests whose subject is <digest>; an empty list (never 404) when there are none. The
 * artifactType filter is applied here, and `OCI-Filters-Applied: artifactType` says so. The
 * converter hears of every listing (an image without a streaming artifact is converted then).
 */
export const listReferrers: RouteHandler = async (c, { repository, param }, deps) => {
  const subject = parseDigest(param)
  const artifactType = new URL(c.req.url).searchParams.get('artifactType')
  let manifests = await deps.backend.listReferrers(repository, subject)
  deps.onReferrersListed?.(repository, subject, manifests)
  const headers: Record<string, string> = { 'content-type': MediaType.ociIndex }
  if (artifactType !== null) {
    manifests = manifests.filter((d) => d.artifactType === artifactType)
    headers['oci-filters-applied'] = 'artifactType'
  }
  return jsonResponse({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, 200, headers)
}
