import { ThawError } from '../../errors.ts'
import { isOciError } from '../errors.ts'

/**
 * When and how long the registry client waits before trying a request again.
 *
 * Delays grow exponentially with "full jitter" (a uniformly random delay between 0 and
 * `baseDelayMs * 2^(attempt-1)`, capped at `maxDelayMs`), so many clients that failed together do
 * not come back together. A `Retry-After` from the server replaces the computed delay (RFC 9110
 * section 10.2.3), capped at `maxRetryAfterMs`.
 */
export interface RetryOptions {
  /** Total tries, the first one included. 1 disables retries. Default 4. */
  attempts?: number
  /** Default 200 ms. Tests set it to a few milliseconds. */
  baseDelayMs?: number
  /** Default 5 s. */
  maxDelayMs?: number
  /** The longest `Retry-After` honoured; longer ones are waited for this long. Default 30 s. */
  maxRetryAfterMs?: number
}

export type RetryPolicy = Required<RetryOptions>

export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  const policy = {
    attempts: options.attempts ?? 4,
    baseDelayMs: options.baseDelayMs ?? 200,
    maxDelayMs: options.maxDelayMs ?? 5_000,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 30_000,
  }
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new ThawError('INVALID_ARGUMENT', `retry.attempts must be an integer >= 1`, {
      fault: 'user',
    })
  }
  return policy
}

/** The delay before try number `attempt + 1`, after try number `attempt` (1-based) failed. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs)
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.random() * ceiling
}

/** Parses `Retry-After`: delay-seconds or an HTTP-date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * Network errors worth another try, by the `code` Node or undici gives them. Those in
 * `NOT_SENT` happen before a request reached the server, so even a non-idempotent request can be
 * sent again after them.
 */
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
])
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** The code of a network failure, looking through `cause` chains and AggregateErrors. */
export function networkErrorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (NETWORK.has(code) || code === 'ENOTFOUND')) return code
    const inner = (e as { errors?: unknown[] }).errors
    if (Array.isArray(inner) && inner.length > 0) e = inner[0]
    else e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * Whether a failed try may be repeated. `idempotent` requests (GET, HEAD, PUT, DELETE, or any
 * request whose body can be replayed without side effects) are retried on 429, 500, 502, 503,
 * 504 and network errors. Others (POST, PATCH) only when the server certainly did not act on
 * them: 429 and 503 (RFC 9110: "currently unable to handle the request") and failures to connect.
 * Content the client itself rejects as the registry's fault (wrong digest, wrong Content-Range)
 * carries status 502 and is fetched again like any bad gateway answer.
 */
export function isRetryable(err: unknown, idempotent: boolean): boolean {
  if (isOciError(err)) {
    const s = err.status
    if (s === 429 || s === 503) return true
    return idempotent && (s === 500 || s === 502 || s === 504)
  }
  const code = networkErrorCode(err)
  if (code === undefined || code === 'ENOTFOUND') return false
  return idempotent || NOT_SENT.has(code)
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal))
    const onAbort = () => {
      clearTimeout(timer)
      reject(abortReason(signal!))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** What an aborted operation rejects with: the signal's reason (an `AbortError` by default). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/** `promise`, or a rejection with the signal's reason as soon as `signal` aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(abortReason(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
