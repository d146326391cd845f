import type { Context } from 'hono'
import type { Descriptor, Digest } from '../../runtime/oci/index.ts'
import type { AccessPolicy } from '../auth/access-policy.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { EdgeEnv } from '../edge-env.ts'
import type { EdgeExtension } from '../edge-extension.ts'
import type { ManifestEvents } from '../manifest-events.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'

/** What route handlers are given: everything injected into the edge, nothing global. */
export interface RouteDeps {
  backend: RegistryBackend
  events: ManifestEvents
  /** DELETE of manifests, tags and blobs; when false they answer 405 UNSUPPORTED. */
  deletion: boolean
  extensions: EdgeExtension[]
  logger: EdgeLogger
  /** Set when auth is on: the catalog lists only what the caller may pull. */
  policy?: AccessPolicy
  /** Told what a referrers request found (unfiltered), after it is answered (convert-on-ask). */
  onReferrersListed?: (repository: string, subject: Digest, found: readonly Descriptor[]) => void
}

/** A matched /v2 route whose repository name has been validated. */
export interface RepositoryRoute {
  repository: string
  /** The tag, digest, upload id or extension subpath; '' when the path has none. */
  param: string
}

export type RouteHandler = (
  c: Context<EdgeEnv>,
  route: RepositoryRoute,
  deps: RouteDeps,
) => Promise<Response>
