import type { Registry } from 'prom-client'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { Conversion } from '../convert/conversion.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import type { Digest } from '../../runtime/oci/index.ts'
import { KeptArtifactsBackend } from '../proxy/kept-artifacts.ts'
import { DiskStore } from '../store/disk-store.ts'
import { collectStore, type CollectedManifest } from '../store/store-gc.ts'
import { GcMetrics } from './gc-metrics.ts'

export interface GcPolicy {
  /** Between collections in the edge process; 0: only when asked. */
  intervalMs: number
  graceMs: number
  keepGenerations: number
  /** Remove manifests no tag reaches (store-gc.ts); off by default. */
  deleteUntagged: boolean
  bundleCacheBytes: number
  compactProfileRuns: boolean
}

/** What one collection removed, or with `dryRun` would remove. */
export interface GcReport {
  dryRun: boolean
  /** Streaming artifacts past the kept generations, referrers of deleted images, untagged ones. */
  manifests: CollectedManifest[]
  layerLinks: number
  blobs: { count: number; bytes: number }
  profileRuns: { count: number; bytes: number }
  bundles: { count: number; bytes: number }
  /** blobs + profile runs + bundles. */
  freedBytes: number
}

/**
 * The edge's garbage collector: the store's mark and sweep (store/store-gc.ts, origin mode
 * only: a proxy's blobs are its upstream's, its chunk cache bounded apart), then the converter's
 * own files: profiles of deleted images, profile runs compacted, the bundle cache bounded.
 * Collections run one at a time; `start()` runs them every `intervalMs`.
 */
export class EdgeGc {
  readonly #backend: RegistryBackend
  readonly #conversion: Conversion | undefined
  readonly #policy: GcPolicy
  readonly #metrics: GcMetrics
  readonly #logger: EdgeLogger
  #running: Promise<GcReport> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(input: {
    backend: RegistryBackend
    conversion?: Conversion
    policy: GcPolicy
    metricsRegistry: Registry
    logger: EdgeLogger
  }) {
    this.#backend = input.backend
    this.#conversion = input.conversion
    this.#policy = input.policy
    this.#metrics = new GcMetrics(input.metricsRegistry)
    this.#logger = input.logger
  }

  get policy(): GcPolicy {
    return this.#policy
  }

  /** One collection, after the one running (if any). */
  run(options: { dryRun: boolean }): Promise<GcReport> {
    const previous = this.#running ?? Promise.resolve(undefined)
    const next = previous.catch(() => {}).then(() => this.#collect(options.dryRun))
    this.#running = next
    void next
      .finally(() => {
        if (this.#running === next) this.#running = undefined
      })
      .catch(() => {})
    return next
  }

  /** Periodic collection every `intervalMs` (none when 0). */
  start(): void {
    if (this.#policy.intervalMs <= 0 || this.#timer) return
    this.#timer = setInterval(() => {
      this.run({ dryRun: false }).catch(() => {}) // logged and counted in #collect
    }, this.#policy.intervalMs)
    this.#timer.unref()
  }

  /** Stops the periodic collection and waits for one running. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running?.catch(() => {})
  }

  async #collect(dryRun: boolean): Promise<GcReport> {
    try {
      const report = await this.#collectAll(dryRun)
      if (!dryRun) this.#count(report)
      this.#logger.info(dryRun ? 'gc dry run' : 'gc done', {
        ...report,
        manifests: report.manifests.length,
      })
      return report
    } catch (err) {
      if (!dryRun) this.#metrics.runs.inc({ result: 'failed' })
      this.#logger.error('gc failed', { error: err instanceof Error ? err.message : String(err) })
      throw err
    }
  }

  async #collectAll(dryRun: boolean): Promise<GcReport> {
    const policy = this.#policy
    const swept = await this.#collectStore(dryRun)
    const conversion = this.#conversion
    const none = { count: 0, bytes: 0 }
    let profileRuns = none
    let bundles = none
    if (conversion) {
      if (!dryRun) {
        for (const m of swept.manifests) {
          // The profiles of an image deleted (or collected untagged) go with it.
          if (m.why === 'subject-deleted') await conversion.profiles.forget(m.repository, m.subject)
          if (m.why === 'untagged' && m.subject === m.digest) {
            await conversion.profiles.forget(m.repository, m.digest)
          }
        }
      }
      if (policy.compactProfileRuns) profileRuns = await conversion.profiles.compactRuns(dryRun)
      const live = swept.live
      bundles = await conversion.bundles.prune({
        maxBytes: policy.bundleCacheBytes,
        isLive: live && ((artifact) => live.has(artifact)),
        busyMs: policy.graceMs,
        dryRun,
      })
    }
    const { manifests, layerLinks, blobs } = swept
    const freedBytes = blobs.bytes + profileRuns.bytes + bundles.bytes
    return { dryRun, manifests, layerLinks, blobs, profileRuns, bundles, freedBytes }
  }

  /**
   * Origin mode: the store. Proxy mode: the store of outputs the upstream refused (its images are
   * upstream, so a referrer is collected for a deleted image only when the upstream lacks it too,
   * and which bundles stay live is not known here).
   */
  async #collectStore(dryRun: boolean) {
    const backend = this.#backend
    const policy = this.#policy
    if (backend instanceof DiskStore) return collectStore(backend, policy, { dryRun })
    if (backend instanceof KeptArtifactsBackend) {
      const subjectElsewhere = (repository: string, subject: Digest) =>
        backend.upstreamHasManifest(repository, subject)
      // Nothing kept has a tag: the upstream's tags decide what is reached.
      const kept = { ...policy, deleteUntagged: false }
      const swept = await collectStore(backend.local, kept, { dryRun, subjectElsewhere })
      return { ...swept, live: undefined }
    }
    return { manifests: [], layerLinks: 0, blobs: { count: 0, bytes: 0 }, live: undefined }
  }

  #count(r: GcReport): void {
    const m = this.#metrics
    m.runs.inc({ result: 'done' })
    m.removed.inc({ kind: 'manifests' }, r.manifests.length)
    m.removed.inc({ kind: 'layer_links' }, r.layerLinks)
    m.removed.inc({ kind: 'blobs' }, r.blobs.count)
    m.removed.inc({ kind: 'profile_runs' }, r.profileRuns.count)
    m.removed.inc({ kind: 'bundles' }, r.bundles.count)
    m.freedBytes.inc({ kind: 'blobs' }, r.blobs.bytes)
    m.freedBytes.inc({ kind: 'profile_runs' }, Math.max(0, r.profileRuns.bytes))
    m.freedBytes.inc({ kind: 'bundles' }, r.bundles.bytes)
  }
}
