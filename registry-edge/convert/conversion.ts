import { join } from 'node:path'
import type { Registry } from 'prom-client'
import type { CodecName } from '../../runtime/format/index.ts'
import type { Descriptor, Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { EdgeExtension } from '../edge-extension.ts'
import type { ManifestPutEvent } from '../manifest-events.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import { BundleCache } from './bundle-cache.ts'
import { ConvertOnAsk } from './convert-on-ask.ts'
import { ConversionMetrics } from './conversion-metrics.ts'
import type { ConversionLimits } from './conversion-limits.ts'
import { Converter } from './converter.ts'
import { ScheduledScan, type ScanSchedule } from './scheduled-scan.ts'
import { outputsTo, type OutputTarget } from './output-target.ts'
import { ProfileStore } from './profile-store.ts'
import { RepositorySettingsStore } from './repository-settings.ts'
import { prepareBundle, thawExtensions } from './thaw-extensions.ts'

/** The `conversion` part of the edge config. */
export interface ConversionOptions {
  /** Where conversion state, profiles and bundles live (origin mode: `<store>/thaw`). */
  dir?: string
  /** Default of every repository's `streaming` setting (default true). */
  streaming?: boolean
  /** Conversions at a time, each on a worker thread (default 1). */
  concurrency?: number
  limits?: Partial<ConversionLimits>
  codec?: CodecName
  level?: number
  /** Level of the part a profile places first (default 9). */
  profiledLevel?: number
  /** Repositories whose tags are scanned for images to convert before anyone asks. */
  schedule?: ScanSchedule
}

export interface Conversion {
  readonly converter: Converter
  readonly profiles: ProfileStore
  readonly bundles: BundleCache
  readonly extensions: EdgeExtension[]
  /** The ManifestEvents listener. */
  onManifestPut(event: ManifestPutEvent): Promise<void>
  /** After a referrers request: converts an image that has no streaming artifact yet. */
  onReferrersListed(repository: string, subject: Digest, found: readonly Descriptor[]): void
  /** Converts images nobody pushed through this edge, when asked for (convert-on-ask.ts). */
  readonly onAsk: ConvertOnAsk
  /** The scan of `options.schedule`'s repositories, when configured (scheduled-scan.ts). */
  readonly scan: ScheduledScan | undefined
  /** Stops the converter (unfinished conversions resume at the next start). Idempotent. */
  close(): Promise<void>
}

/**
 * Conversion in the edge, over any RegistryBackend: the converter (resuming what a previous run
 * left), the profile store, the bundle cache and the `_thaw` extensions that expose them.
 *
 *   <dir>/state/…     conversion status per image       <dir>/settings/…  per-repository settings
 *   <dir>/profiles/…  profile runs and merged profiles  <dir>/bundles/…   built prefetch bundles
 *   <dir>/work/…      temp files of running conversions (cleared at start)
 */
export async function startConversion(input: {
  backend: RegistryBackend
  /** Where artifacts and profiles are published (default: the backend). */
  outputs?: OutputTarget
  dir: string
  logger: EdgeLogger
  metricsRegistry: Registry
  options?: ConversionOptions
}): Promise<Conversion> {
  const { backend, dir, logger } = input
  const options = input.options ?? {}
  const settings = new RepositorySettingsStore(join(dir, 'settings'), {
    streaming: options.streaming ?? true,
  })
  const outputs = input.outputs ?? outputsTo(backend)
  const profiles = new ProfileStore(join(dir, 'profiles'), outputs)
  const bundles = new BundleCache(join(dir, 'bundles'), backend)
  // Build the bundle as soon as an image is laid out by a profile: the first replaying cold
  // start then streams it instead of waiting for it to be built.
  // One bundle per workload with a profile.
  const prebuild = (repository: string, manifest: Digest, profile: Digest | undefined) => {
    if (!profile) return
    const build = async () => {
      for (const merged of await profiles.all(repository, manifest)) {
        const { workload } = merged.profile
        await prepareBundle({ backend, profiles, bundles }, repository, manifest, { workload })
      }
    }
    build().catch((err: unknown) =>
      logger.warn('prefetch bundle not prebuilt', { repository, manifest, error: String(err) }),
    )
  }
  const converter = new Converter({
    backend,
    dir,
    settings,
    profiles,
    outputs,
    logger,
    metrics: new ConversionMetrics(input.metricsRegistry),
    concurrency: options.concurrency,
    limits: options.limits,
    codec: options.codec,
    level: options.level,
    profiledLevel: options.profiledLevel,
    onConverted: prebuild,
  })
  await converter.start()
  const onAsk = new ConvertOnAsk({ converter, backend, logger })
  const scan =
    options.schedule &&
    new ScheduledScan({
      schedule: options.schedule,
      backend,
      converter,
      onAsk,
      logger,
      metricsRegistry: input.metricsRegistry,
    })
  scan?.start()
  return {
    converter,
    profiles,
    onAsk,
    scan,
    bundles,
    extensions: thawExtensions({ converter, onAsk, settings, profiles, bundles }),
    onManifestPut: (event) => converter.onManifestPut(event),
    onReferrersListed: (repository, subject, found) =>
      onAsk.onReferrersListed(repository, subject, found),
    close: async () => {
      await scan?.close()
      await converter.close()
    },
  }
}
