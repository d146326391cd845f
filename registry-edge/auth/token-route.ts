import type { Context } from 'hono'
import { OciError } from '../../runtime/oci/index.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { clientAddress } from '../http/client-address.ts'
import { errorResponse, jsonResponse } from '../http/http-errors.ts'
import { throttled } from './auth-middleware.ts'
import type { EdgeAuth } from './edge-auth.ts'

/**
 * GET /token?service=<service>&scope=<scope>[&scope=...] (distribution `docs/spec/auth/token.md`
 * "Requesting a Token"), with Basic credentials or none (anonymous). Answers
 * `{token, access_token, expires_in, issued_at}`; wrong credentials get 401, too many wrong ones
 * 429, and a token for a service other than this edge's (when `service` is configured) 403.
 */
export async function tokenRoute(c: Context<EdgeEnv>, auth: EdgeAuth): Promise<Response> {
  const subject = await auth.basicSubject(c.req.header('authorization'), clientAddress(c))
  if (subject === 'invalid') {
    return errorResponse(new OciError('UNAUTHORIZED', 'invalid username or password'), {
      'www-authenticate': `Basic realm="${auth.service(c.req.url)}"`,
    })
  }
  if ('via' in subject) return throttled(subject.retryAfterSeconds)
  const url = new URL(c.req.url)
  const audience = url.searchParams.get('service') ?? auth.service(c.req.url)
  if (!auth.issuesFor(audience)) {
    const message = `this edge issues tokens for ${auth.service(c.req.url)}, not ${audience.slice(0, 100)}`
    return errorResponse(new OciError('DENIED', message))
  }
  // Several scope parameters (docker), or several scopes in one separated by spaces (OAuth 2).
  const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean))
  const issued = await auth.issueToken(subject, audience, scopes)
  return jsonResponse(
    {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    },
    200,
    { 'cache-control': 'no-store' },
  )
}
