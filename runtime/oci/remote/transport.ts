import type { Readable } from 'node:stream'
import { Agent, type Dispatcher } from 'undici'
import { followRedirects, type Wire } from './follow-redirects.ts'
import { ThawError } from '../../errors.ts'
import { Authenticator, type CredentialsOption } from './auth.ts'
import { errorFromResponse } from './response-error.ts'
import { destroyBody, discardBody, readBody, type RegistryResponse } from './response.ts'
import {
  abortReason,
  backoffDelay,
  isRetryable,
  networkErrorCode,
  parseRetryAfter,
  retryPolicy,
  sleep,
  type RetryOptions,
  type RetryPolicy,
} from './retry.ts'

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

/** A request body that can be sent again: bytes, or a function that opens the stream anew. */
export type ReplayableBody = Buffer | (() => Readable | Promise<Readable>)

export interface TransportRequest {
  method: Method
  /** Absolute, or resolved against the registry URL (`/v2/...`, or a relative upload Location). */
  url: string | URL
  headers?: Record<string, string>
  body?: ReplayableBody
  /** The token scopes the request needs (`repository:<name>:pull`). */
  scopes: readonly string[]
  signal?: AbortSignal
  /** Defaults to true for GET, HEAD, PUT and DELETE (RFC 9110 section 9.2.2). */
  idempotent?: boolean
  /** Sent without credentials (token endpoints). */
  anonymous?: boolean
}

export interface TransportOptions {
  registry: string
  credentials?: CredentialsOption
  dispatcher?: Dispatcher
  retry?: RetryOptions
  userAgent?: string
  /** Time to wait for response headers, and between body chunks. Default 60 s and 120 s. */
  timeouts?: { headersMs?: number; bodyMs?: number }
  /** The clock for token expiry (tests move it). */
  now?: () => number
}

export interface Transport {
  readonly registry: URL
  readonly retry: RetryPolicy
  /**
   * Sends `request` and hands the response to `consume`, whose result it returns. Requests that
   * fail with a retryable status or network error are tried again (see retry.ts), and so is
   * `consume` when reading the body fails on the network: a whole buffered read is retried, not
   * just the request. `consume` must read or discard the body.
   */
  call<T>(request: TransportRequest, consume: (res: RegistryResponse) => Promise<T>): Promise<T>
  /** Closes the connection pool if this transport created it. Idempotent. */
  close(): Promise<void>
}

export function createTransport(options: TransportOptions): Transport {
  const registry = new URL(options.registry)
  if (registry.protocol !== 'http:' && registry.protocol !== 'https:') {
    const message = `registry must be an http(s) URL: ${options.registry}`
    throw new ThawError('INVALID_ARGUMENT', message, { fault: 'user' })
  }
  const owned = options.dispatcher ? undefined : new Agent({ keepAliveTimeout: 10_000 })
  const wire: Wire = {
    dispatcher: options.dispatcher ?? owned!,
    base: registry,
    userAgent: options.userAgent ?? 'thaw',
    headersTimeout: options.timeouts?.headersMs ?? 60_000,
    bodyTimeout: options.timeouts?.bodyMs ?? 120_000,
  }
  const follow = (req: TransportRequest, authorization: string | undefined) =>
    followRedirects(wire, req, authorization)
  const policy = retryPolicy(options.retry)
  let closing: Promise<void> | undefined

  const auth = new Authenticator({
    credentials: options.credentials,
    now: options.now,
    fetchToken: (url, authorization, signal) =>
      call(
        {
          method: 'GET',
          url,
          scopes: [],
          signal,
          anonymous: true,
          headers: authorization ? { authorization } : {},
        },
        async (res) => ({
          status: res.status,
          body: await readBody(res, 1024 * 1024, 'token response'),
        }),
      ),
  })

  /** One try: authorization from what we know, and one more exchange after a 401 challenge. */
  async function attempt(req: TransportRequest): Promise<RegistryResponse> {
    const url = new URL(req.url, registry)
    const ours = !req.anonymous && url.origin === registry.origin
    const sent = ours
      ? await auth.authorization(registry.origin, req.scopes, req.signal)
      : undefined
    const res = await follow(req, sent)
    if (res.status !== 401 || !ours || res.url.origin !== registry.origin) return res
    let answer: string | undefined
    try {
      answer = await auth.answer(
        registry.origin,
        res.header('www-authenticate'),
        req.scopes,
        sent,
        req.signal,
      )
    } catch (err) {
      destroyBody(res)
      throw err
    }
    if (answer === undefined) return res
    await discardBody(res)
    return follow(req, answer)
  }

  async function call<T>(
    req: TransportRequest,
    consume: (res: RegistryResponse) => Promise<T>,
  ): Promise<T> {
    if (closing) throw new ThawError('CLIENT_CLOSED', 'the registry client is closed')
    const idempotent = req.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(req.method)
    const what = `${req.method} ${new URL(req.url, registry).pathname}`
    for (let tries = 1; ; tries++) {
      let retryAfterMs: number | undefined
      try {
        const res = await attempt(req)
        if (res.status === 429 || res.status >= 500) {
          retryAfterMs = parseRetryAfter(res.header('retry-after'))
          throw await errorFromResponse(res, what)
        }
        try {
          return await consume(res)
        } catch (err) {
          destroyBody(res)
          throw err
        }
      } catch (err) {
        if (req.signal?.aborted) throw abortReason(req.signal)
        const failure = networkErrorCode(err) ? unreachable(what, registry, err) : err
        if (tries >= policy.attempts || !isRetryable(failure, idempotent)) throw failure
        await sleep(backoffDelay(policy, tries, retryAfterMs), req.signal)
      }
    }
  }

  return {
    registry,
    retry: policy,
    call,
    close() {
      closing ??= owned ? owned.close() : Promise.resolve()
      return closing
    },
  }
}

function unreachable(what: string, registry: URL, err: unknown): unknown {
  if (err instanceof ThawError) return err
  const code = networkErrorCode(err)
  return new ThawError(
    'REGISTRY_UNREACHABLE',
    `${what} on ${registry.host} failed: ${code} ${(err as Error).message}`,
    { cause: err },
  )
}
