import { randomUUID } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ConversionStatus, StreamingConfig } from '../../runtime/artifact/index.ts'
import { isThawError, ThawError } from '../../runtime/errors.ts'
import type { CodecName } from '../../runtime/format/index.ts'
import {
  isImageManifestMediaType,
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type Digest,
  type ImageManifest,
} from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import { listArtifacts, publishArtifact } from './artifact-store.ts'
import { copyBlobToFile, readSmallBlob } from './backend-blobs.ts'
import type { ConversionMetrics } from './conversion-metrics.ts'
import { ConversionStates } from './conversion-state.ts'
import {
  checkImage,
  DEFAULT_CONVERSION_LIMITS,
  readingLimitsOf,
  type ConversionLimits,
} from './conversion-limits.ts'
import { outputsTo, type OutputTarget } from './output-target.ts'
import type { RepositorySettingsStore } from './repository-settings.ts'
import { WorkerPool } from './worker-pool.ts'

/** The merged profile an image is to be laid out by (profile-store.ts). */
export interface ProfileSource {
  current(
    repository: string,
    manifest: Digest,
  ): Promise<
    { digest: Digest; order: string[]; ranges?: [string, [number, number][]][] } | undefined
  >
}

export interface ConverterOptions {
  backend: RegistryBackend
  /** The converter's own directory: `state/` (statuses) and `work/` (temp files of running jobs). */
  dir: string
  settings: RepositorySettingsStore
  metrics: ConversionMetrics
  logger: EdgeLogger
  profiles?: ProfileSource
  /** Where artifacts are published (default: the backend). */
  outputs?: OutputTarget
  /** Conversions at a time, each on its own worker thread (default 1). */
  concurrency?: number
  limits?: Partial<ConversionLimits>
  codec?: CodecName
  level?: number
  /** Level of the part a profile places first (default 9): re-layout runs offline. */
  profiledLevel?: number
  /** Called after an image was converted or re-laid out by a profile (not awaited). */
  onConverted?: (repository: string, manifest: Digest, profile: Digest | undefined) => void
}

type Key = string
const keyOf = (repository: string, manifest: Digest): Key => `${repository}@${manifest}`

/**
 * Converts images into streaming artifacts in the background (README.md "Conversion").
 *
 * - `request()` records `pending` (persisted) and queues; at most `concurrency` jobs run, each
 *   converting on a worker thread; a request for an image already running runs again after it.
 * - A job takes the image's current merged profile (if any): when the newest artifact already has
 *   that profile, it is reused (idempotent, nothing converted); otherwise the artifact gets the
 *   next generation, so a re-layout supersedes the older artifact for pickStreamingArtifact.
 * - Resumable: `start()` re-queues every `pending`/`converting` record left by a stopped edge.
 * - The original manifest and blobs are only read; outputs go to `work/` and then the backend.
 */
export class Converter {
  readonly states: ConversionStates
  readonly #options: ConverterOptions
  readonly #limits: ConversionLimits
  readonly #pool: WorkerPool
  readonly #queue = new Map<Key, { repository: string; manifest: Digest }>()
  readonly #running = new Map<Key, Promise<void>>()
  readonly #again = new Set<Key>()
  readonly #abort = new AbortController()
  readonly #idle: (() => void)[] = []
  #closed: Promise<void> | undefined

  constructor(options: ConverterOptions) {
    this.#options = options
    this.#limits = { ...DEFAULT_CONVERSION_LIMITS, ...options.limits }
    this.#pool = new WorkerPool(options.concurrency ?? 1)
    this.states = new ConversionStates(join(options.dir, 'state'))
  }

  /** Clears temp files of an earlier run and re-queues its unfinished conversions. */
  async start(): Promise<void> {
    await rm(this.#workDir(), { recursive: true, force: true })
    for (const { repository, status } of await this.states.list(['pending', 'converting'])) {
      this.#options.logger.info('conversion resumed', { repository, manifest: status.manifest })
      this.#schedule(repository, status.manifest)
    }
  }

  /**
   * Asks for a conversion of an image manifest (or a re-layout by its newest profile). Returns the
   * recorded status: `pending`, or `skipped` when the repository has streaming off.
   */
  async request(repository: string, manifest: Digest): Promise<ConversionStatus> {
    const settings = await this.#options.settings.get(repository)
    if (!settings.streaming) {
      return this.states.set(repository, manifest, 'skipped', {
        code: 'STREAMING_DISABLED',
        reason: `streaming is off for ${repository} (PUT _thaw/settings to turn it on)`,
      })
    }
    const status = await this.states.set(repository, manifest, 'pending')
    this.#schedule(repository, manifest)
    return status
  }

  /**
   * The ManifestEvents listener: image manifests are converted, index manifests through each of
   * their platform manifests; referrers and artifacts (a `subject` or an `artifactType`) are not
   * images and are left alone, the converter's own artifacts included.
   */
  async onManifestPut(event: {
    repository: string
    digest: Digest
    mediaType: string
    bytes: Uint8Array
    subject?: Descriptor
  }): Promise<void> {
    if (event.subject) return
    const parsed = parseManifest(event.bytes, event.mediaType)
    if (parsed.kind === 'image') {
      if (parsed.manifest.artifactType) return
      await this.request(event.repository, event.digest)
      return
    }
    const platforms = parsed.manifest.manifests.filter(
      (d) => isImageManifestMediaType(d.mediaType) && d.platform && d.platform.os !== 'unknown',
    )
    await this.states.set(event.repository, event.digest, 'skipped', {
      code: 'IMAGE_INDEX',
      reason: `an image index: its ${platforms.length} platform manifests are converted one by one`,
    })
    for (const d of platforms) await this.request(event.repository, d.digest)
  }

  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void> {
    if (this.#queue.size === 0 && this.#running.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Stops: running jobs are cut (they stay `converting` and resume on the next start). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#queue.clear()
      this.#abort.abort(new Error('the converter is closing'))
      await this.#pool.close()
      await Promise.allSettled([...this.#running.values()])
    })()
    return this.#closed
  }

  #schedule(repository: string, manifest: Digest): void {
    if (this.#abort.signal.aborted) return
    const key = keyOf(repository, manifest)
    if (this.#running.has(key)) this.#again.add(key)
    else this.#queue.set(key, { repository, manifest })
    this.#pump()
  }

  #pump(): void {
    const concurrency = this.#options.concurrency ?? 1
    for (const [key, job] of this.#queue) {
      if (this.#running.size >= concurrency) break
      this.#queue.delete(key)
      const run = this.#convert(job.repository, job.manifest).finally(() => {
        this.#running.delete(key)
        if (this.#again.delete(key)) this.#queue.set(key, job)
        this.#pump()
      })
      this.#running.set(key, run)
    }
    this.#options.metrics.queued.set(this.#queue.size)
    if (this.#queue.size === 0 && this.#running.size === 0) {
      for (const resolve of this.#idle.splice(0)) resolve()
    }
  }

  async #convert(repository: string, manifest: Digest): Promise<void> {
    const { metrics, logger } = this.#options
    const started = performance.now()
    metrics.inProgress.inc()
    try {
      const result = await this.#convertImage(repository, manifest)
      metrics.conversions.inc({ result })
      if (result === 'converted') metrics.duration.observe((performance.now() - started) / 1000)
      logger.info('conversion finished', { repository, manifest, result })
    } catch (err) {
      if (this.#abort.signal.aborted) return // stays `converting`: resumed on the next start
      const user = isThawError(err) && err.fault === 'user'
      const code = isThawError(err) ? err.code : 'CONVERSION_FAILED'
      const reason = err instanceof Error ? err.message : String(err)
      await this.states
        .set(repository, manifest, user ? 'skipped' : 'failed', { code, reason })
        .catch((e: unknown) => logger.error('conversion state not recorded', { error: String(e) }))
      metrics.conversions.inc({ result: user ? 'skipped' : 'failed' })
      const log = user ? logger.warn : logger.error
      log('conversion not done', { repository, manifest, code, reason })
    } finally {
      metrics.inProgress.dec()
    }
  }

  /** One image: checks, reuse of an up-to-date artifact, or conversion and publication. */
  async #convertImage(repository: string, manifest: Digest): Promise<'converted' | 'reused'> {
    const { backend } = this.#options
    const signal = this.#abort.signal
    const stored = await backend.getManifest(repository, { digest: manifest })
    if (!stored) throw userError('MANIFEST_UNKNOWN', `manifest ${manifest} is not in ${repository}`)
    const parsed = parseManifest(stored.bytes, stored.mediaType)
    if (parsed.kind !== 'image') throw userError('MEDIA_TYPE_UNSUPPORTED', 'not an image manifest')
    const image: ImageManifest = parsed.manifest
    const configBytes = await readSmallBlob(
      backend,
      repository,
      image.config.digest,
      4 * 2 ** 20,
      signal,
    )
    const config = parseImageConfig(configBytes)
    const layers = checkImage(image, config, this.#limits)
    const profile = await this.#options.profiles?.current(repository, manifest)

    const [newest] = await listArtifacts(backend, repository, manifest)
    if (newest && newest.config.profile === profile?.digest) {
      const fields = {
        artifact: newest.digest,
        generation: newest.generation,
        profile: newest.config.profile,
      }
      await this.states.set(repository, manifest, 'converted', fields)
      return 'reused'
    }
    await this.states.set(repository, manifest, 'converting')
    const work = join(this.#workDir(), randomUUID())
    await mkdir(join(work, 'out'), { recursive: true })
    try {
      const inputs = []
      for (const [i, layer] of layers.entries()) {
        const path = join(work, `in-${i}`)
        await copyBlobToFile(backend, repository, layer.digest, path, signal)
        inputs.push({ path, compression: layer.compression })
      }
      const result = await this.#pool.run(
        {
          layers: inputs,
          order: profile?.order ?? [],
          ranges: profile?.ranges ?? [],
          profiledLevel: this.#options.profiledLevel ?? DEFAULT_PROFILED_LEVEL,
          outDir: join(work, 'out'),
          codec: this.#options.codec ?? 'zstd',
          level: this.#options.level,
          ...readingLimitsOf(this.#limits),
        },
        signal,
      )
      result.diffIds.forEach((d, i) => {
        if (d !== config.rootfs.diff_ids[i]) {
          throw userError(
            'DIFFID_MISMATCH',
            `layer ${i} unpacks to ${d}, the config says ${config.rootfs.diff_ids[i]}`,
          )
        }
      })
      const streamingConfig: StreamingConfig = {
        version: 1,
        generation: newest ? newest.generation + 1 : 0,
        source: { manifest, layers: layers.map((l) => l.digest) },
        ...(profile && { profile: profile.digest }),
      }
      const subject = { mediaType: stored.mediaType, digest: manifest, size: stored.bytes.length }
      const outputs = this.#options.outputs ?? outputsTo(backend)
      const artifact = await outputs.write(repository, (target) =>
        publishArtifact(target, repository, { subject, config: streamingConfig, result }, signal),
      )
      const { metrics } = this.#options
      metrics.bytes.inc(
        { direction: 'in' },
        layers.reduce((n, l) => n + l.size, 0),
      )
      metrics.bytes.inc(
        { direction: 'out' },
        [result.index, ...result.blobs].reduce((n, b) => n + b.size, 0),
      )
      await this.states.set(repository, manifest, 'converted', {
        artifact: artifact.digest,
        generation: artifact.generation,
        profile: profile?.digest,
      })
      this.#options.onConverted?.(repository, manifest, profile?.digest)
      return 'converted'
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }

  #workDir(): string {
    return join(this.#options.dir, 'work')
  }
}

/**
 * zstd level of a profile's part: against level 3, 7 % fewer bytes for 1 MiB frames of a node
 * binary at ~23 MB/s (level 19 saves 15 % at ~2 MB/s: too slow for an edge's worker thread).
 */
export const DEFAULT_PROFILED_LEVEL = 9

function userError(code: string, message: string): ThawError {
  return new ThawError(code, message, { fault: 'user' })
}
