import type { Action } from './auth/scope.ts'
import type { RegistryBackend } from './backend/registry-backend.ts'
import type { EdgeLogger } from './observability/edge-logger.ts'

/**
 * A thaw extension served under `/v2/<name>/_thaw/<extension name>/...` (distribution-spec
 * `extensions/README.md` reserves `_<ns>` path components for this). The edge validates the
 * repository name and applies auth before calling `handle`; errors thrown are rendered like any
 * other (OciError → its status and spec body).
 *
 * @example
 *   const status: EdgeExtension = {
 *     name: 'status',
 *     handle: async ({ repository }) => Response.json({ repository, converted: false }),
 *   }
 *   await createRegistryEdge({ store, extensions: [status] })   // GET /v2/apps/hello/_thaw/status
 */
export interface EdgeExtension {
  /** The first path component after `_thaw/`. */
  name: string
  /** The action a request needs on the repository; default pull for GET/HEAD, push otherwise. */
  access?(method: string, subpath: string): Action
  handle(request: ExtensionRequest): Promise<Response> | Response
}

export interface ExtensionRequest {
  repository: string
  /** The path after `_thaw/<name>`, e.g. `/v1` for `/v2/apps/hello/_thaw/bundle/v1`; may be ''. */
  subpath: string
  request: Request
  backend: RegistryBackend
  logger: EdgeLogger
}

export function extensionAction(extension: EdgeExtension | undefined, method: string, subpath: string): Action {
  return extension?.access?.(method, subpath) ?? (method === 'GET' || method === 'HEAD' ? 'pull' : 'push')
}

/** `bundle/v1` → name `bundle`, subpath `/v1`; `status` → name `status`, subpath ''. */
export function splitExtensionPath(path: string): { name: string; subpath: string } {
  const slash = path.indexOf('/')
  return slash < 0 ? { name: path, subpath: '' } : { name: path.slice(0, slash), subpath: path.slice(slash) }
}
