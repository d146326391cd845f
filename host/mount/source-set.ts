import { describeError } from '../../runtime/errors.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/auth.ts'
import { createRegistryClient, type RegistryClient } from '../../runtime/oci/remote/index.ts'
import { MountError } from './errors.ts'

/** Where blobs and manifests come from: the edges in preference order, then the origin. */
export interface Source {
  readonly url: string
  readonly client: RegistryClient
  /** While in the future, the source is tried only after every healthy one. */
  downUntil: number
}

export interface SourceSetOptions {
  /** Base URLs, nearest first; the origin last. */
  urls: readonly string[]
  credentials?: CredentialsOption
  /** Deadline of one request to one source (default 10 s): a black-holed edge costs this once. */
  requestTimeoutMs?: number
  /** How long a failed source is skipped before it is tried first again (default 30 s). */
  retryAfterMs?: number
  warn?: (message: string) => void
}

export interface SourceCall {
  signal?: AbortSignal
  /** Sources not to ask (they gave wrong bytes for this request). */
  exclude?: ReadonlySet<Source>
}

/**
 * Runs a request against the sources in order: healthy ones first (in preference order), then
 * those marked down (so with every source down each one is still tried once). A source that
 * fails or misses the deadline is marked down for `retryAfterMs`. Each client retries a little
 * itself; the failover across sources is what bounds a read's time.
 */
export class SourceSet {
  readonly sources: Source[]
  readonly #timeoutMs: number
  readonly #retryAfterMs: number
  readonly #warn: (message: string) => void

  constructor(options: SourceSetOptions) {
    if (options.urls.length === 0) {
      throw new MountError('SOURCES_UNAVAILABLE', 'no edge or origin registry to fetch from')
    }
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000
    this.#retryAfterMs = options.retryAfterMs ?? 30_000
    this.#warn = options.warn ?? (() => {})
    this.sources = [...new Set(options.urls.map((u) => u.replace(/\/+$/, '')))].map((url) => ({
      url,
      downUntil: 0,
      client: createRegistryClient({
        registry: url,
        credentials: options.credentials,
        retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 200 },
        timeouts: { headersMs: this.#timeoutMs, bodyMs: this.#timeoutMs },
      }),
    }))
  }

  /** The sources in the order a request tries them now. */
  order(exclude?: ReadonlySet<Source>): Source[] {
    const now = Date.now()
    const usable = this.sources.filter((s) => !exclude?.has(s))
    return [...usable.filter((s) => s.downUntil <= now), ...usable.filter((s) => s.downUntil > now)]
  }

  markDown(source: Source, why: string): void {
    source.downUntil = Date.now() + this.#retryAfterMs
    this.#warn(`source ${source.url} skipped for ${this.#retryAfterMs} ms: ${why}`)
  }

  markUp(source: Source): void {
    source.downUntil = 0
  }

  /** The first source's answer; `what` names the request in errors. */
  async call<T>(
    what: string,
    fn: (source: Source, signal: AbortSignal) => Promise<T>,
    options: SourceCall = {},
  ): Promise<{ value: T; source: Source }> {
    const errors: string[] = []
    let missing: unknown
    for (const source of this.order(options.exclude)) {
      options.signal?.throwIfAborted()
      const deadline = AbortSignal.timeout(this.#timeoutMs)
      const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline
      try {
        const value = await fn(source, signal)
        if (source.downUntil > 0) this.markUp(source)
        return { value, source }
      } catch (err) {
        options.signal?.throwIfAborted()
        if (isBadInput(err)) throw err
        if (isNotFound(err)) {
          // This source lacks it (an edge that has not seen the repository): ask the next one.
          missing ??= err
          errors.push(`${source.url}: ${describeError(err)}`)
          continue
        }
        const why = deadline.aborted ? `no answer within ${this.#timeoutMs} ms` : describeError(err)
        errors.push(`${source.url}: ${why}`)
        this.markDown(source, `${what}: ${why}`)
      }
    }
    if (missing !== undefined && errors.length === this.sources.length) throw missing
    throw new MountError('SOURCES_UNAVAILABLE', `${what}: every source failed (${errors.join('; ')})`)
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.client.close()))
  }
}

function codeOf(err: unknown): unknown {
  return (err as { code?: unknown } | undefined)?.code
}

function isNotFound(err: unknown): boolean {
  return ['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN'].includes(codeOf(err) as string)
}

/** A request no source can answer differently. */
function isBadInput(err: unknown): boolean {
  return ['NAME_INVALID', 'DIGEST_INVALID', 'INVALID_ARGUMENT'].includes(codeOf(err) as string)
}
