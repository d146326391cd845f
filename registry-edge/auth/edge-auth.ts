import { isRepositoryName } from '../../runtime/oci/index.ts'
import type { Principal } from '../edge-env.ts'
import { AccessPolicy, type Subject } from './access-policy.ts'
import type { AuthConfig } from './auth-config.ts'
import { TokenSigner, type TokenAccess, type TokenClaims } from './bearer-token.ts'
import { ACTIONS, parseScope, type Action } from './scope.ts'

/** The result of reading a request's Authorization header. */
export type Identity =
  | { via: 'none' | 'basic' | 'bearer'; principal: Principal }
  | { via: 'invalid'; scheme: 'basic' | 'bearer' }

/**
 * Auth for one edge: who a request comes from (Basic credentials checked against the config,
 * or a bearer token this edge issued, or nobody) and the docker token flow
 * (distribution `docs/spec/auth/token.md`): challenges that point at this edge's /token, and
 * tokens carrying exactly the granted part of the requested scopes.
 */
export class EdgeAuth {
  readonly policy: AccessPolicy
  readonly #signer: TokenSigner
  readonly #config: AuthConfig

  constructor(config: AuthConfig) {
    this.#config = config
    this.policy = new AccessPolicy(config)
    this.#signer = new TokenSigner({ key: config.tokenKey, ttlSeconds: config.tokenTtlSeconds })
  }

  async identify(authorization: string | undefined): Promise<Identity> {
    if (!authorization) return { via: 'none', principal: this.#policyPrincipal({ kind: 'anonymous' }) }
    const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2)
    if (scheme.toLowerCase() === 'bearer') {
      const claims = this.#signer.verify(credentials)
      if (!claims) return { via: 'invalid', scheme: 'bearer' }
      return { via: 'bearer', principal: tokenPrincipal(claims) }
    }
    if (scheme.toLowerCase() === 'basic') {
      const subject = await this.#basic(credentials)
      if (!subject) return { via: 'invalid', scheme: 'basic' }
      return { via: 'basic', principal: this.#policyPrincipal(subject) }
    }
    return { via: 'invalid', scheme: 'basic' }
  }

  /** `WWW-Authenticate` for a 401 (RFC 6750 §3 attributes, as docker clients expect them). */
  challenge(requestUrl: string, scope?: string, error?: string): string {
    const url = new URL(requestUrl)
    const realm = this.#config.realm ?? `${url.origin}/token`
    let value = `Bearer realm="${realm}",service="${this.service(requestUrl)}"`
    if (scope) value += `,scope="${scope}"`
    if (error) value += `,error="${error}"`
    return value
  }

  service(requestUrl: string): string {
    return this.#config.service ?? new URL(requestUrl).host
  }

  /**
   * GET /token: the token for `subject`, granting of each requested scope only the actions the
   * config allows (a scope nothing of which is granted is left out, not refused: the client then
   * gets 401/403 from the endpoint it tries, which says more than a failed token request).
   */
  issueToken(subject: Subject, audience: string, scopes: string[]) {
    const access: TokenAccess[] = []
    for (const text of scopes) {
      const scope = parseScope(text)
      if (!scope || scope.type !== 'repository' || !isRepositoryName(scope.name)) continue
      const granted = this.policy.grants(subject, scope.name)
      const wanted = scope.actions.includes('*') ? ACTIONS : scope.actions
      const actions = wanted.filter((a): a is Action => granted.has(a as Action))
      if (actions.length > 0) access.push({ type: 'repository', name: scope.name, actions })
    }
    return this.#signer.issue(subject.kind === 'user' ? subject.name : '', audience, access)
  }

  /** Basic credentials of a configured user (RFC 7617), or undefined. */
  async #basic(credentials: string): Promise<Subject | undefined> {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    return this.policy.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1))
  }

  async basicSubject(authorization: string | undefined): Promise<Subject | 'invalid'> {
    if (!authorization) return { kind: 'anonymous' }
    const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2)
    if (scheme.toLowerCase() !== 'basic') return 'invalid'
    return (await this.#basic(credentials)) ?? 'invalid'
  }

  #policyPrincipal(subject: Subject): Principal {
    return { subject, can: (repository, action) => this.policy.grants(subject, repository).has(action) }
  }
}

/** A token grants exactly what it lists, nothing the config would grant beyond it. */
function tokenPrincipal(claims: TokenClaims): Principal {
  const subject: Subject = claims.sub ? { kind: 'user', name: claims.sub } : { kind: 'anonymous' }
  return {
    subject,
    can: (repository, action) =>
      claims.access.some(
        (a) => a.type === 'repository' && a.name === repository && a.actions.includes(action),
      ),
  }
}
