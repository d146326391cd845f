import type { Context, MiddlewareHandler } from 'hono'
import { OciError } from '../../runtime/oci/index.ts'
import type { EdgeExtension } from '../edge-extension.ts'
import { extensionAction, splitExtensionPath } from '../edge-extension.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { clientAddress } from '../http/client-address.ts'
import { errorResponse } from '../http/http-errors.ts'
import type { V2Route } from '../routes/v2-paths.ts'
import type { EdgeAuth } from './edge-auth.ts'
import { repositoryScope, type Action } from './scope.ts'

/** What a /v2 request needs: to be signed in (the base ping), nothing (catalog), or an action. */
type Need =
  { kind: 'signed-in' } | { kind: 'none' } | { kind: 'action'; repository: string; action: Action }

/**
 * Auth on /v2 (runs after the route is matched and the name validated):
 *
 * - bad credentials (wrong password, forged or expired token, a token for another service) →
 *   401 with a challenge;
 * - Basic credentials from an address or for a user that failed too often lately → 429
 *   TOOMANYREQUESTS with Retry-After, without checking the password;
 * - allowed → the request goes on, with `principal` set for handlers (catalog filter, mounts);
 * - not allowed: with Basic credentials → 403 DENIED (asking again will not help); anonymous or
 *   with a token → 401 and a challenge naming the scope needed, which docker clients (skopeo)
 *   answer by fetching a token for that scope from /token.
 *
 * The base `/v2/` ping answers 401 to anonymous requests: clients discover the token endpoint
 * there (containers/image only authenticates if the ping was challenged).
 */
export function authMiddleware(
  auth: EdgeAuth,
  extensions: EdgeExtension[],
): MiddlewareHandler<EdgeEnv> {
  return async (c, next) => {
    const need = needOf(c.get('route'), c.req.method, extensions)
    const identity = await auth.identify(c.req.header('authorization'), {
      url: c.req.url,
      address: clientAddress(c),
    })
    if (identity.via === 'throttled') return throttled(identity.retryAfterSeconds)
    const scope = need.kind === 'action' ? challengeScope(need) : undefined
    if (identity.via === 'invalid') {
      const error = identity.scheme === 'bearer' ? 'invalid_token' : undefined
      return unauthorized(c, auth, 'authentication failed', scope, error)
    }
    c.set('principal', identity.principal)
    if (need.kind === 'none') return next()
    if (need.kind === 'signed-in') {
      return identity.via === 'none' ? unauthorized(c, auth, 'authentication required') : next()
    }
    if (identity.principal.can(need.repository, need.action)) return next()
    const message = `${need.action} access to ${need.repository} is not granted`
    if (identity.via === 'basic') return errorResponse(new OciError('DENIED', message))
    const error = identity.via === 'bearer' ? 'insufficient_scope' : undefined
    return unauthorized(c, auth, message, scope, error)
  }
}

function needOf(route: V2Route, method: string, extensions: EdgeExtension[]): Need {
  if (route.kind === 'base') return { kind: 'signed-in' }
  if (route.kind === 'catalog') return { kind: 'none' }
  const repository = route.name!
  if (route.kind === 'extension') {
    const { name, subpath } = splitExtensionPath(route.param ?? '')
    const extension = extensions.find((e) => e.name === name)
    return { kind: 'action', repository, action: extensionAction(extension, method, subpath) }
  }
  if (route.kind === 'uploads' || method === 'PUT')
    return { kind: 'action', repository, action: 'push' }
  if (method === 'DELETE') return { kind: 'action', repository, action: 'delete' }
  return { kind: 'action', repository, action: 'pull' }
}

/** Pushing clients ask for pull and push together (they HEAD blobs while pushing). */
function challengeScope(need: { repository: string; action: Action }): string {
  return repositoryScope(need.repository, need.action === 'push' ? ['pull', 'push'] : [need.action])
}

/** 429 for a login that was not tried (distribution-spec: a 429 SHOULD carry Retry-After). */
export function throttled(retryAfterSeconds: number): Response {
  const err = new OciError(
    'TOOMANYREQUESTS',
    'too many failed logins from this client or for this user; try again later',
    {
      detail: { retryAfterSeconds },
    },
  )
  return errorResponse(err, { 'retry-after': String(retryAfterSeconds) })
}

function unauthorized(
  c: Context<EdgeEnv>,
  auth: EdgeAuth,
  message: string,
  scope?: string,
  error?: string,
): Response {
  const challenge = auth.challenge(c.req.url, scope, error)
  return errorResponse(new OciError('UNAUTHORIZED', message), { 'www-authenticate': challenge })
}
