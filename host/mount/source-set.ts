import { describeError } from '../../runtime/errors.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/auth.ts'
import { createRegistryClient, type RegistryClient } from '../../runtime/oci/remote/index.ts'
import { EdgeSpeed } from './edge-speed.ts'
import { MountError } from './errors.ts'

/** Where blobs and manifests come from: the edges in preference order, then the origin. */
export interface Source {
  readonly url: string
  readonly client: RegistryClient
  /** While in the future, the source is tried only after every healthy one. */
  downUntil: number
  /** Measurements, for an edge (`measured`); undefined for the origin. */
  readonly speed?: EdgeSpeed
}

/** One edge as /metrics shows it. */
export interface EdgeStatus {
  url: string
  healthy: boolean
  preferred: boolean
  rttSeconds?: number
  bytesPerSecond?: number
}

export interface SourceSetOptions {
  /** Base URLs, nearest first; the origin last. */
  urls: readonly string[]
  credentials?: CredentialsOption
  /** Deadline of one request to one source (default 10 s): a black-holed edge costs this once. */
  requestTimeoutMs?: number
  /** How long a failed source is skipped before it is tried first again (default 30 s). */
  retryAfterMs?: number
  /**
   * How many of `urls`, from the first, are edges to measure (default 0: none, the order is the
   * given one). The fastest healthy edge is tried first, the others then in the given order.
   */
  measured?: number
  /** Between probes of the measured edges (default 10 s; the first at once). */
  probeIntervalMs?: number
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
 *
 * Nearest edge: the `measured` edges are probed (`GET /v2/`, every `probeIntervalMs`) for their
 * round-trip time, and range reads give their throughput (edge-speed.ts). The healthy edge that
 * would fetch a 1 MiB run soonest goes first; it keeps that place until another is clearly
 * faster (its cost under 0.8 × the preferred one's), so two similar edges do not take turns. A
 * probe that fails marks the edge down, one that answers brings it back.
 */
export class SourceSet {
  readonly sources: Source[]
  readonly #timeoutMs: number
  readonly #retryAfterMs: number
  readonly #warn: (message: string) => void
  readonly #probe: NodeJS.Timeout | undefined
  #preferred: Source | undefined
  #closed = false

  constructor(options: SourceSetOptions) {
    if (options.urls.length === 0) {
      throw new MountError('SOURCES_UNAVAILABLE', 'no edge or origin registry to fetch from')
    }
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000
    this.#retryAfterMs = options.retryAfterMs ?? 30_000
    this.#warn = options.warn ?? (() => {})
    const measured = new Set(options.urls.slice(0, options.measured ?? 0).map(trimUrl))
    this.sources = [...new Set(options.urls.map(trimUrl))].map((url) => ({
      url,
      downUntil: 0,
      speed: measured.has(url) ? new EdgeSpeed() : undefined,
      client: createRegistryClient({
        registry: url,
        credentials: options.credentials,
        retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 200 },
        timeouts: { headersMs: this.#timeoutMs, bodyMs: this.#timeoutMs },
      }),
    }))
    if (this.sources.some((s) => s.speed)) {
      void this.probe()
      this.#probe = setInterval(() => void this.probe(), options.probeIntervalMs ?? 10_000)
      this.#probe.unref()
    }
  }

  /** The sources in the order a request tries them now. */
  order(exclude?: ReadonlySet<Source>): Source[] {
    const now = Date.now()
    const healthy = (s: Source) => s.downUntil <= now
    const preferred = this.#choose(healthy)
    const usable = this.sources.filter((s) => !exclude?.has(s))
    const first = preferred && usable.includes(preferred) ? [preferred] : []
    const rest = usable.filter((s) => s !== preferred)
    return [...first, ...rest.filter(healthy), ...rest.filter((s) => !healthy(s))]
  }

  /** Every measured edge: healthy, preferred, its round-trip time and throughput. */
  edges(): EdgeStatus[] {
    const now = Date.now()
    const preferred = this.#choose((s) => s.downUntil <= now)
    return this.sources
      .filter((s) => s.speed)
      .map((s) => ({
        url: s.url,
        healthy: s.downUntil <= now,
        preferred: s === preferred,
        rttSeconds: s.speed!.rttMs === undefined ? undefined : s.speed!.rttMs / 1000,
        bytesPerSecond: s.speed!.bytesPerSecond,
      }))
  }

  /** Probes every measured edge once (`GET /v2/`: any answer is alive, 401 included). */
  async probe(): Promise<void> {
    await Promise.all(
      this.sources
        .filter((s) => s.speed)
        .map(async (s) => {
          const started = performance.now()
          try {
            const res = await fetch(`${s.url}/v2/`, {
              signal: AbortSignal.timeout(this.#timeoutMs),
            })
            const ms = performance.now() - started
            await res.body?.cancel()
            if (this.#closed) return
            s.speed!.rtt(ms)
            if (s.downUntil > 0) this.markUp(s)
          } catch (err) {
            if (this.#closed) return
            s.speed!.probeFailures++
            if (s.downUntil <= Date.now()) this.markDown(s, `probe: ${describeError(err)}`)
          }
        }),
    )
  }

  /** The healthy measured edge that is fastest, keeping the current one unless clearly beaten. */
  #choose(healthy: (s: Source) => boolean): Source | undefined {
    let best: { source: Source; cost: number } | undefined
    for (const s of this.sources) {
      const cost = s.speed?.cost()
      if (cost === undefined || !healthy(s)) continue
      if (!best || cost < best.cost) best = { source: s, cost }
    }
    const current = this.#preferred
    const currentCost = current && healthy(current) ? current.speed!.cost() : undefined
    if (best && currentCost !== undefined && best.cost > SWITCH_RATIO * currentCost) return current
    this.#preferred = best?.source
    return this.#preferred
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
    const causes: unknown[] = []
    let missing: unknown
    for (const source of this.order(options.exclude)) {
      options.signal?.throwIfAborted()
      const deadline = AbortSignal.timeout(this.#timeoutMs)
      const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline
      try {
        const started = performance.now()
        const value = await fn(source, signal)
        if (value instanceof Uint8Array)
          source.speed?.transfer(value.length, performance.now() - started)
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
        causes.push(err)
        this.markDown(source, `${what}: ${why}`)
      }
    }
    if (missing !== undefined && errors.length === this.sources.length) throw missing
    // The causes let a caller tell "nothing listens there" from other failures (the CLI's one line).
    const cause = new AggregateError(causes, 'every source failed')
    throw new MountError(
      'SOURCES_UNAVAILABLE',
      `${what}: every source failed (${errors.join('; ')})`,
      { cause },
    )
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#probe)
    await Promise.all(this.sources.map((s) => s.client.close()))
  }
}

/** A preferred edge is left for another only when that one's cost is below this share of its. */
const SWITCH_RATIO = 0.8

function trimUrl(url: string): string {
  return url.replace(/\/+$/, '')
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
