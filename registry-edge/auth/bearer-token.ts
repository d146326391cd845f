import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'

/**
 * The edge's own bearer tokens: JWTs (RFC 7519) signed with HMAC-SHA256 (`alg: HS256`) under a
 * key only this edge knows. Claims follow distribution's token format (`docs/spec/auth/jwt.md`):
 * `sub`, `aud` (the service), `iat`, `exp` and `access: [{type, name, actions}]`. Clients treat the
 * token as opaque; only the edge that issued it can verify it.
 *
 *   base64url({"alg":"HS256","typ":"JWT"}) . base64url(claims) . base64url(HMAC(key, first two))
 */
const accessSchema = z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) })
const claimsSchema = z.object({
  iss: z.string(),
  sub: z.string(),
  aud: z.string(),
  iat: z.number(),
  exp: z.number(),
  access: z.array(accessSchema),
})
export type TokenClaims = z.infer<typeof claimsSchema>
export type TokenAccess = z.infer<typeof accessSchema>

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')
const ISSUER = 'thaw-edge'

export interface IssuedToken {
  token: string
  expiresIn: number
  issuedAt: string
}

export class TokenSigner {
  readonly #key: Buffer
  readonly #ttlSeconds: number

  /** Without a key, a random one: tokens then die with the process. */
  constructor(options: { key?: string; ttlSeconds: number }) {
    this.#key = options.key ? Buffer.from(options.key, 'utf8') : randomBytes(32)
    this.#ttlSeconds = options.ttlSeconds
  }

  issue(subject: string, audience: string, access: TokenAccess[], now = Date.now()): IssuedToken {
    const iat = Math.floor(now / 1000)
    const claims: TokenClaims = { iss: ISSUER, sub: subject, aud: audience, iat, exp: iat + this.#ttlSeconds, access }
    const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    return {
      token: `${body}.${this.#sign(body)}`,
      expiresIn: this.#ttlSeconds,
      issuedAt: new Date(iat * 1000).toISOString(),
    }
  }

  /** The claims of a token this edge issued and that has not expired; otherwise undefined. */
  verify(token: string, now = Date.now()): TokenClaims | undefined {
    const parts = token.split('.')
    if (parts.length !== 3 || parts[0] !== HEADER) return undefined
    const expected = Buffer.from(this.#sign(`${parts[0]}.${parts[1]}`))
    const actual = Buffer.from(parts[2]!)
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined
    let claims: TokenClaims
    try {
      const parsed = claimsSchema.safeParse(JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()))
      if (!parsed.success) return undefined
      claims = parsed.data
    } catch {
      return undefined
    }
    if (claims.iss !== ISSUER || claims.exp * 1000 <= now) return undefined
    return claims
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url')
  }
}
