import type { Context } from 'hono'
import { OciError } from '../../runtime/oci/index.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { errorResponse, jsonResponse } from '../http/http-errors.ts'
import type { EdgeAuth } from './edge-auth.ts'

/**
 * GET /token?service=<service>&scope=<scope>[&scope=...] (distribution `docs/spec/auth/token.md`
 * "Requesting a Token"), with Basic credentials or none (anonymous). Answers
 * `{token, access_token, expires_in, issued_at}`; wrong credentials get 401.
 */
export async function tokenRoute(c: Context<EdgeEnv>, auth: EdgeAuth): Promise<Response> {
  const subject = await auth.basicSubject(c.req.header('authorization'))
  if (subject === 'invalid') {
    return errorResponse(new OciError('UNAUTHORIZED', 'invalid username or password'), {
      'www-authenticate': `Basic realm="${auth.service(c.req.url)}"`,
    })
  }
  const url = new URL(c.req.url)
  const audience = url.searchParams.get('service') ?? auth.service(c.req.url)
  // Several scope parameters (docker), or several scopes in one separated by spaces (OAuth 2).
  const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean))
  const issued = auth.issueToken(subject, audience, scopes)
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
