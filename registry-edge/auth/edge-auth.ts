import { isRepositoryName } from '../../runtime/oci/index.ts'
import type { Principal } from '../edge-env.ts'
import { AccessPolicy, type Subject } from './access-policy.ts'
import { loginLimitsOf, type AuthConfig } from './auth-config.ts'
import { TokenSigner, type TokenAccess, type TokenClaims } from './bearer-token.ts'
import type { LoginEvents, LoginRefusal } from './login-limits.ts'
import { LoginThrottle } from './login-throttle.ts'
import { PasswordChecker } from './password-checker.ts'
import { ACTIONS, parseScope, type Action } from './scope.ts'

/** Where a request comes from: its URL (for the service it addressed) and the client's address. */
export interface RequestOrigin {
  url: string
  address: string
}

/** A login that was not tried (login-throttle.ts): answered 429 with Retry-After. */
export type Throttled = { via: 'throttled'; retryAfterSeconds: number }

/** The result of reading a request's Authorization header. */
export type Identity =
  | { via: 'none' | 'basic' | 'bearer'; principal: Principal }
  | { via: 'invalid'; scheme: 'basic' | 'bearer' }
  | Throttled

/**
 * Auth for one edge: who a request comes from (Basic credentials checked against the config,
 * or a bearer token this edge issued for its service, or nobody) and the docker token flow
 * (distribution `docs/spec/auth/token.md`): challenges that point at this edge's /token, and
 * tokens carrying exactly the granted part of the requested scopes.
 *
 * Basic logins go through a LoginThrottle (per address and per user backoff) and a
 * PasswordChecker (bounded scrypt work); a login either is not tried (Throttled) or costs one
 * scrypt, whether the user exists or not.
 */
export class EdgeAuth {
  readonly policy: AccessPolicy
  readonly #signer: TokenSigner
  readonly #config: AuthConfig
  readonly #throttle: LoginThrottle
  readonly #events: LoginEvents

  constructor(config: AuthConfig, events: LoginEvents = {}) {
    const limits = loginLimitsOf(config)
    this.#config = config
    this.#events = events
    this.#throttle = new LoginThrottle(limits)
    const checker = new PasswordChecker({
      maxConcurrent: limits.maxConcurrentChecks,
      maxQueued: limits.maxQueuedChecks,
      events,
    })
    this.policy = new AccessPolicy(config, checker)
    this.#signer = new TokenSigner({ key: config.tokenKey, ttlSeconds: config.tokenTtlSeconds })
  }

  async identify(authorization: string | undefined, origin: RequestOrigin): Promise<Identity> {
    if (!authorization)
      return { via: 'none', principal: this.#policyPrincipal({ kind: 'anonymous' }) }
    const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2)
    if (scheme.toLowerCase() === 'bearer') {
      const claims = await this.#signer.verify(credentials, this.service(origin.url))
      if (!claims) return { via: 'invalid', scheme: 'bearer' }
      return { via: 'bearer', principal: tokenPrincipal(claims) }
    }
    if (scheme.toLowerCase() === 'basic') {
      const result = await this.#basic(credentials, origin.address)
      if (result === undefined) return { via: 'invalid', scheme: 'basic' }
      if ('via' in result) return result
      return { via: 'basic', principal: this.#policyPrincipal(result) }
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

  /** Whether tokens for `service` may be issued here: any when no service is configured. */
  issuesFor(service: string): boolean {
    return this.#config.service === undefined || this.#config.service === service
  }

  async basicSubject(
    authorization: string | undefined,
    address: string,
  ): Promise<Subject | 'invalid' | Throttled> {
    if (!authorization) return { kind: 'anonymous' }
    const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2)
    if (scheme.toLowerCase() !== 'basic') return 'invalid'
    return (await this.#basic(credentials, address)) ?? 'invalid'
  }

  /** Basic credentials of a configured user (RFC 7617): the user, undefined, or not tried. */
  async #basic(credentials: string, address: string): Promise<Subject | Throttled | undefined> {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    const user = decoded.slice(0, colon)
    const wait = this.#throttle.wait(address, user)
    if (wait) return this.#refuse(wait.by, wait.ms)
    const known = this.#throttle.isKnown(address, user)
    const subject = await this.policy.authenticate(user, decoded.slice(colon + 1), known)
    if (subject === 'busy') return this.#refuse('busy', 1000)
    if (subject === undefined) {
      this.#throttle.failed(address, user)
      this.#events.failed?.()
      return undefined
    }
    this.#throttle.succeeded(address, user)
    return subject
  }

  #refuse(by: LoginRefusal, ms: number): Throttled {
    this.#events.refused?.(by)
    return { via: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)) }
  }

  #policyPrincipal(subject: Subject): Principal {
    return {
      subject,
      can: (repository, action) => this.policy.grants(subject, repository).has(action),
    }
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
