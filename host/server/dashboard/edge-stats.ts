import { request } from 'undici'
import { thawPaths, parseConversionStatus } from '../../../runtime/artifact/thaw-api.ts'
import { describeError } from '../../../runtime/errors.ts'
import type { Digest } from '../../../runtime/oci/digest.ts'
import { parseImageReference } from '../../../runtime/oci/reference.ts'
import {
  createRegistryClient,
  readBody,
  type CredentialsOption,
  type RegistryClient,
} from '../../../runtime/oci/remote/index.ts'

/** An edge's figures from its `/metrics` (registry-edge/observability, convert/conversion-metrics). */
export interface EdgeFigures {
  url: string
  error?: string
  /** thaw_edge_conversions_total by result (converted, skipped, failed, reused). */
  conversions: Record<string, number>
  conversionsInProgress: number
  cacheHits: number
  cacheMisses: number
  /** Hits over hits and misses (proxy mode); undefined before any chunk read. */
  hitRate?: number
  /** thaw_edge_bytes_served_total, every kind. */
  bytesServed: number
}

/** What the edge says of one image: its conversion (generation) and its prefetch bundle. */
export interface EdgeImage {
  state?: string
  generation?: number
  /** Bytes of the bundle the edge serves for the image's newest artifact; undefined if none. */
  bundleBytes?: number
  error?: string
}

export interface EdgeStatsOptions {
  /** Base URL of the edge for a registry host (as the profile tracker's); default http://<registry>. */
  edgeFor?: (registry: string) => string
  credentials?: CredentialsOption
  /** Figures are fetched again at most this often. Default 5 s. */
  maxAgeMs?: number
}

const TIMEOUT_MS = 3000

/**
 * The edges behind a host's images, as the dashboard shows them: each edge's `/metrics`, and per
 * image its conversion status and bundle size (`_thaw/status`, a one-byte range of `_thaw/bundle`).
 * Fetched on demand, at most every `maxAgeMs`, never on a request's path.
 */
export class EdgeStats {
  readonly #clients = new Map<string, RegistryClient>()
  #edges: EdgeFigures[] = []
  #images = new Map<string, EdgeImage>()
  #fetchedAt = 0
  #refreshing: Promise<void> | undefined

  constructor(private readonly o: EdgeStatsOptions = {}) {}

  edges(): EdgeFigures[] {
    return this.#edges
  }

  /** What the edge says of an image, and of its bundle for `workload` (the profile tracker's). */
  image(reference: string, workload: string): EdgeImage | undefined {
    return this.#images.get(`${reference} ${workload}`)
  }

  /** Fetches the figures again if they are older than maxAgeMs. */
  refresh(images: { reference: string; workload: string; manifest?: Digest }[]): Promise<void> {
    if (Date.now() - this.#fetchedAt < (this.o.maxAgeMs ?? 5000)) return Promise.resolve()
    this.#refreshing ??= this.#fetch(images).finally(() => {
      this.#fetchedAt = Date.now()
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  async close(): Promise<void> {
    await this.#refreshing
    await Promise.all([...this.#clients.values()].map((c) => c.close()))
  }

  #base(reference: string): string {
    const registry = parseImageReference(reference).registry!
    return this.o.edgeFor?.(registry) ?? `http://${registry}`
  }

  async #fetch(
    images: { reference: string; workload: string; manifest?: Digest }[],
  ): Promise<void> {
    const bases = [...new Set(images.map((i) => this.#base(i.reference)))]
    const [edges, states] = await Promise.all([
      Promise.all(bases.map((b) => edgeFigures(b))),
      Promise.all(
        images.map(async (i) => [`${i.reference} ${i.workload}`, await this.#image(i)] as const),
      ),
    ])
    this.#edges = edges
    this.#images = new Map(states)
  }

  async #image(i: { reference: string; workload: string; manifest?: Digest }): Promise<EdgeImage> {
    if (!i.manifest) return {}
    const base = this.#base(i.reference)
    let client = this.#clients.get(base)
    if (!client)
      this.#clients.set(
        base,
        (client = createRegistryClient({ registry: base, credentials: this.o.credentials })),
      )
    const repository = parseImageReference(i.reference).repository
    try {
      const signal = AbortSignal.timeout(TIMEOUT_MS)
      const status = await client.extension(repository, {
        method: 'GET',
        path: thawPaths.status(repository, i.manifest),
        signal,
      })
      const text = (await readBody(status, 64 * 1024, 'conversion status')).toString()
      const parsed = status.status === 200 ? parseConversionStatus(JSON.parse(text)) : undefined
      const bundle = await client.extension(repository, {
        method: 'GET',
        path: thawPaths.bundle(repository, i.manifest, i.workload),
        headers: { range: 'bytes=0-0' },
        signal,
      })
      await readBody(bundle, 64 * 1024, 'bundle range') // one byte, or the 404's error body
      const size = /\/(\d+)$/.exec(bundle.header('content-range') ?? '')?.[1]
      return {
        state: parsed?.state,
        generation: parsed?.generation,
        bundleBytes: size === undefined ? undefined : Number(size),
      }
    } catch (err) {
      return { error: describeError(err) }
    }
  }
}

async function edgeFigures(url: string): Promise<EdgeFigures> {
  const figures: EdgeFigures = {
    url,
    conversions: {},
    conversionsInProgress: 0,
    cacheHits: 0,
    cacheMisses: 0,
    bytesServed: 0,
  }
  try {
    const res = await request(`${url}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
    for (const s of parseSamples(text)) {
      if (s.name === 'thaw_edge_conversions_total') {
        const result = s.labels.result ?? 'unknown'
        figures.conversions[result] = (figures.conversions[result] ?? 0) + s.value
      }
      if (s.name === 'thaw_edge_conversions_in_progress') figures.conversionsInProgress += s.value
      if (s.name === 'thaw_edge_cache_hits_total') figures.cacheHits += s.value
      if (s.name === 'thaw_edge_cache_misses_total') figures.cacheMisses += s.value
      if (s.name === 'thaw_edge_bytes_served_total') figures.bytesServed += s.value
    }
    const reads = figures.cacheHits + figures.cacheMisses
    if (reads > 0) figures.hitRate = figures.cacheHits / reads
  } catch (err) {
    figures.error = describeError(err)
  }
  return figures
}

/**
 * Samples of the Prometheus text format (`name{label="value",…} value`; comments skipped). Only
 * what the edge's counters and gauges need: no escapes in label values, no timestamps kept.
 */
export function parseSamples(
  text: string,
): { name: string; labels: Record<string, string>; value: number }[] {
  const out = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? +(\S+)(?: +\d+)?$/.exec(line)
    if (!m || !Number.isFinite(Number(m[3]))) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}
