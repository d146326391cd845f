import type { Context, MiddlewareHandler } from 'hono'
import { OciError, parseRepositoryName } from '../../runtime/oci/index.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { EVERYONE } from '../edge-env.ts'
import { splitExtensionPath } from '../edge-extension.ts'
import { jsonResponse } from '../http/http-errors.ts'
import { deleteBlob, getBlob } from './blob-routes.ts'
import { listCatalog, listReferrers, listTags } from './listing-routes.ts'
import { deleteManifest, getManifest, putManifest } from './manifest-routes.ts'
import type { RouteDeps, RouteHandler } from './route-deps.ts'
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './upload-routes.ts'
import { matchV2Path, type V2Route } from './v2-paths.ts'

type Methods = Partial<Record<string, RouteHandler>>

/** Which handler answers which method, per endpoint (distribution-spec "Endpoints" table). */
const TABLE: Record<'manifests' | 'blobs' | 'uploads' | 'session' | 'tags' | 'referrers', Methods> = {
  manifests: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  blobs: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
  uploads: { POST: startUpload },
  session: { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload },
  tags: { GET: listTags },
  referrers: { GET: listReferrers },
}

/** The endpoint's handlers; undefined for base, catalog and extensions (handled apart). */
function methodsOf(route: V2Route): Methods | undefined {
  if (route.kind === 'base' || route.kind === 'catalog' || route.kind === 'extension') return undefined
  if (route.kind === 'uploads') return route.param ? TABLE.session : TABLE.uploads
  return TABLE[route.kind]
}

/**
 * First middleware on /v2/*: recognizes the endpoint (404 if none), validates the repository
 * name (NAME_INVALID), refuses methods the endpoint lacks (405 UNSUPPORTED with Allow), and
 * leaves the route for auth and the handler.
 */
export const matchV2Route: MiddlewareHandler<EdgeEnv> = async (c, next) => {
  const route = matchV2Path(new URL(c.req.url).pathname)
  if (!route) throw new OciError('UNSUPPORTED', `no such endpoint: ${c.req.method} ${c.req.path}`, { status: 404 })
  if (route.name !== undefined) parseRepositoryName(route.name)
  const methods = methodsOf(route)
  const allowed = route.kind === 'base' ? ['GET', 'HEAD'] : route.kind === 'catalog' ? ['GET'] : methods && Object.keys(methods)
  if (allowed && !allowed.includes(c.req.method)) {
    const err = new OciError('UNSUPPORTED', `${c.req.method} is not supported on this endpoint`)
    return jsonResponse(err.toBody(), 405, { allow: allowed.join(', ') })
  }
  c.set('route', route)
  c.set('principal', EVERYONE)
  await next()
}

/** Last handler on /v2/*: runs the endpoint's handler. */
export function dispatchV2(deps: RouteDeps) {
  return async (c: Context<EdgeEnv>): Promise<Response> => {
    const route = c.get('route')
    if (route.kind === 'base') return jsonResponse({})
    if (route.kind === 'catalog') return listCatalog(c, deps)
    const repository = route.name!
    if (route.kind === 'extension') return dispatchExtension(c, repository, route.param ?? '', deps)
    const handler = methodsOf(route)?.[c.req.method]!
    return handler(c, { repository, param: route.param ?? '' }, deps)
  }
}

async function dispatchExtension(
  c: Context<EdgeEnv>,
  repository: string,
  path: string,
  deps: RouteDeps,
): Promise<Response> {
  const { name, subpath } = splitExtensionPath(path)
  const extension = deps.extensions.find((e) => e.name === name)
  if (!extension) throw new OciError('UNSUPPORTED', `no thaw extension "${name}"`, { status: 404 })
  return extension.handle({ repository, subpath, request: c.req.raw, backend: deps.backend, logger: deps.logger })
}
