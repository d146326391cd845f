import { randomBytes } from 'node:crypto'
import { SignJWT, jwtVerify } from 'jose'
import { z } from 'zod'

/**
 * The edge's own bearer tokens: JWTs (RFC 7519) signed with HMAC-SHA256 (`alg: HS256`) under a
 * key only this edge knows (or the edges that share `tokenKey`), made and checked by `jose`.
 * Claims follow distribution's token format (`docs/spec/auth/jwt.md`): `iss`, `sub`, `aud` (the
 * service the token is for), `iat`, `exp` and `access: [{type, name, actions}]`. A token is
 * accepted only by the service it names (RFC 7519 §4.1.3: a recipient that does not identify
 * itself with the `aud` value MUST reject it), so a token issued for one edge is no good at
 * another that shares its key.
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

const ISSUER = 'thaw-edge'

export interface IssuedToken {
  token: string
  expiresIn: number
  issuedAt: string
}

export class TokenSigner {
  readonly #key: Uint8Array
  readonly #ttlSeconds: number

  /** Without a key, a random one: tokens then die with the process. */
  constructor(options: { key?: string; ttlSeconds: number }) {
    this.#key = options.key ? Buffer.from(options.key, 'utf8') : randomBytes(32)
    this.#ttlSeconds = options.ttlSeconds
  }

  async issue(
    subject: string,
    audience: string,
    access: TokenAccess[],
    now = Date.now(),
  ): Promise<IssuedToken> {
    const iat = Math.floor(now / 1000)
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.#ttlSeconds)
      .sign(this.#key)
    return { token, expiresIn: this.#ttlSeconds, issuedAt: new Date(iat * 1000).toISOString() }
  }

  /**
   * The claims of a token this edge issued for `audience` that has not expired; otherwise
   * undefined (another key or algorithm, edited, expired, for another service, not a JWT).
   */
  async verify(
    token: string,
    audience: string,
    now = Date.now(),
  ): Promise<TokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        typ: 'JWT',
        issuer: ISSUER,
        audience,
        currentDate: new Date(now),
      })
      const parsed = claimsSchema.safeParse(payload)
      return parsed.success ? parsed.data : undefined
    } catch {
      return undefined
    }
  }
}
