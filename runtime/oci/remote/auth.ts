import { z } from 'zod'
import { OciError } from '../errors.ts'
import { untilAborted } from './retry.ts'
import { TokenCache, mergeScopes } from './token-cache.ts'
import { parseWwwAuthenticate, type Challenge } from './www-authenticate.ts'

export interface Credentials {
  username: string
  password: string
}

/** Fixed credentials, or a lookup by registry host (`host:port`), e.g. from a docker config. */
export type CredentialsOption =
  Credentials | ((host: string) => Credentials | undefined | Promise<Credentials | undefined>)

/** GETs a token endpoint URL; the caller retries on 5xx and network errors. */
export type TokenFetcher = (
  url: URL,
  authorization: string | undefined,
  signal: AbortSignal | undefined,
) => Promise<{ status: number; body: Buffer }>

type KnownScheme = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string }

/**
 * Registry authentication (distribution `docs/spec/auth/token.md`, RFC 7617).
 *
 * 1. A request goes out with whatever the last challenge from that registry taught us (a cached
 *    bearer token covering its scopes, or Basic credentials), so steady-state traffic never
 *    pays for a 401 round trip.
 * 2. On 401, `answer` reads `WWW-Authenticate`: for `Bearer realm=…,service=…,scope=…` it GETs
 *    `realm?service=…&scope=…` (Basic credentials if any, else anonymous), caches the token per
 *    (registry, scopes) until `expires_in` (default 60 s) minus a margin; for `Basic` it uses the
 *    credentials. The caller retries the request once with the result.
 */
export class Authenticator {
  readonly #credentials: CredentialsOption | undefined
  readonly #fetchToken: TokenFetcher
  readonly #tokens: TokenCache
  readonly #schemes = new Map<string, KnownScheme>()
  readonly #inflight = new Map<string, Promise<string>>()

  constructor(options: {
    credentials?: CredentialsOption
    fetchToken: TokenFetcher
    now?: () => number
  }) {
    this.#credentials = options.credentials
    this.#fetchToken = options.fetchToken
    this.#tokens = new TokenCache(options.now)
  }

  /** The Authorization header to send up front to `origin` for `scopes`, if we know one. */
  async authorization(
    origin: string,
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const known = this.#schemes.get(origin)
    if (!known) return undefined
    if (known.scheme === 'basic') return this.#basic(origin)
    const wanted = mergeScopes(scopes)
    const cached = this.#tokens.get(origin, wanted)
    if (cached) return `Bearer ${cached}`
    return `Bearer ${await this.#token(origin, known, wanted, signal)}`
  }

  /**
   * Answers a 401 from `origin`: returns the Authorization header to retry with, or undefined
   * when nothing we have can satisfy the challenge. `used` is what the refused request carried.
   */
  async answer(
    origin: string,
    header: string | undefined,
    scopes: readonly string[],
    used: string | undefined,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (used?.startsWith('Bearer ')) this.#tokens.delete(origin, used.slice('Bearer '.length))
    const challenges = header ? parseWwwAuthenticate(header) : []
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm)
    if (bearer) {
      const known = {
        scheme: 'bearer' as const,
        realm: bearer.params.realm!,
        service: bearer.params.service,
      }
      this.#checkRealm(origin, known.realm)
      this.#schemes.set(origin, known)
      const wanted = mergeScopes([...scopes, ...challengeScopes(bearer)])
      return `Bearer ${await this.#token(origin, known, wanted, signal)}`
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.#schemes.set(origin, { scheme: 'basic' })
      const basic = await this.#basic(origin)
      return basic === used ? undefined : basic
    }
    return undefined
  }

  async #basic(origin: string): Promise<string | undefined> {
    const creds = await this.#lookup(origin)
    if (!creds) return undefined
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
  }

  async #lookup(origin: string): Promise<Credentials | undefined> {
    const c = this.#credentials
    return typeof c === 'function' ? await c(new URL(origin).host) : c
  }

  /**
   * One token fetch per (registry, scopes) at a time: concurrent requests share it. The shared
   * fetch is not tied to any one caller's signal (one caller giving up must not fail the others);
   * each caller stops waiting when its own signal aborts.
   */
  #token(
    origin: string,
    known: KnownScheme & { scheme: 'bearer' },
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string> {
    const key = `${origin} ${scopes.join(' ')}`
    let pending = this.#inflight.get(key)
    if (!pending) {
      pending = this.#fetch(origin, known, scopes).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, pending)
    }
    return untilAborted(pending, signal)
  }

  async #fetch(
    origin: string,
    known: KnownScheme & { scheme: 'bearer' },
    scopes: readonly string[],
  ): Promise<string> {
    const url = new URL(known.realm)
    if (known.service) url.searchParams.set('service', known.service)
    for (const scope of scopes) url.searchParams.append('scope', scope)
    const { status, body } = await this.#fetchToken(url, await this.#basic(origin), undefined)
    if (status !== 200) {
      const code = status === 401 ? 'UNAUTHORIZED' : 'DENIED'
      throw new OciError(code, `token endpoint ${url.origin}${url.pathname} answered ${status}`, {
        status: status === 401 ? 401 : 403,
      })
    }
    const { token, expiresIn } = parseTokenResponse(body)
    this.#tokens.set(origin, scopes, token, expiresIn)
    return token
  }

  /** Credentials must not travel in the clear to a token realm of an https registry. */
  #checkRealm(origin: string, realm: string): void {
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new OciError('UNAUTHORIZED', `registry ${origin} sent an invalid token realm`)
    }
    if (origin.startsWith('https:') && url.protocol !== 'https:') {
      throw new OciError(
        'UNAUTHORIZED',
        `registry ${origin} sent a non-https token realm ${url.origin}`,
      )
    }
  }
}

function challengeScopes(challenge: Challenge): string[] {
  return (challenge.params.scope ?? '').split(' ').filter(Boolean)
}

const tokenResponseSchema = z.looseObject({
  token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  expires_in: z.number().positive().optional(),
})

/** The token endpoint's JSON: `{token | access_token, expires_in (default 60)}`. */
export function parseTokenResponse(body: Buffer): { token: string; expiresIn: number } {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    throw new OciError('UNAUTHORIZED', 'token endpoint answered something that is not JSON')
  }
  const result = tokenResponseSchema.safeParse(json)
  const token = result.success ? (result.data.token ?? result.data.access_token) : undefined
  if (!result.success || !token) {
    throw new OciError('UNAUTHORIZED', 'token endpoint answered without a token')
  }
  return { token, expiresIn: result.data.expires_in ?? 60 }
}
