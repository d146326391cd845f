import type { ConversionStatus } from '../../runtime/artifact/index.ts'
import { MediaType, parseManifest, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import type { Converter } from './converter.ts'

/** A `failed` conversion is asked for again on a new ask once it is this old. */
const RETRY_FAILED_AFTER_MS = 60_000

/**
 * Conversion of images the edge never saw pushed (README.md "Images pushed elsewhere"): in proxy
 * mode CI may push straight to the upstream, so no manifest event ever reaches the converter. The
 * first time someone asks for an image's artifact (a referrers request that finds none, the
 * `_thaw/status` of an image the edge has no record of, a scheduled scan), the manifest is read
 * from the backend and handed to the converter as if it had just been pushed.
 *
 * Asks for one image share one look-up (concurrent hosts convert once); an image with a record
 * (pending, converting, converted, skipped) is left alone, so asking costs a file read after the
 * first time. A `failed` one is asked for again after a minute.
 */
export class ConvertOnAsk {
  readonly #converter: Converter
  readonly #backend: RegistryBackend
  readonly #logger: EdgeLogger
  readonly #asking = new Map<string, Promise<ConversionStatus | undefined>>()

  constructor(o: { converter: Converter; backend: RegistryBackend; logger: EdgeLogger }) {
    this.#converter = o.converter
    this.#backend = o.backend
    this.#logger = o.logger
  }

  /**
   * After a referrers request: `found` is what it listed. Without a streaming artifact among
   * them, the image is converted (not awaited: the answer is not held up).
   */
  onReferrersListed(repository: string, subject: Digest, found: readonly Descriptor[]): void {
    if (found.some((d) => d.artifactType === MediaType.thawStreaming)) return
    this.ask(repository, subject, { artifactMissing: true }).catch((err: unknown) =>
      this.#logger.warn('conversion on ask failed', {
        repository,
        manifest: subject,
        error: String(err),
      }),
    )
  }

  /**
   * Converts `manifest` unless the edge has a record of it; the record afterwards (undefined when
   * the backend has no such manifest). `artifactMissing`: the caller saw no artifact, so a
   * `converted` record is out of date (its artifact was deleted) and the image is converted again.
   */
  ask(
    repository: string,
    manifest: Digest,
    o: { artifactMissing?: boolean } = {},
  ): Promise<ConversionStatus | undefined> {
    const key = `${repository}@${manifest}`
    let asking = this.#asking.get(key)
    if (!asking) {
      asking = this.#ask(repository, manifest, o.artifactMissing ?? false).finally(() =>
        this.#asking.delete(key),
      )
      this.#asking.set(key, asking)
    }
    return asking
  }

  async #ask(
    repository: string,
    manifest: Digest,
    artifactMissing: boolean,
  ): Promise<ConversionStatus | undefined> {
    const states = this.#converter.states
    const known = await states.get(repository, manifest)
    const outdated = known?.state === 'converted' && artifactMissing
    if (known && !outdated && !stale(known)) return known
    const stored = await this.#backend.getManifest(repository, { digest: manifest })
    if (!stored) return undefined
    const parsed = parseManifest(stored.bytes, stored.mediaType)
    // Referrers and artifacts (ours included) are not images: nothing to convert.
    if (parsed.manifest.subject || parsed.manifest.artifactType) return undefined
    this.#logger.info('conversion asked for', { repository, manifest })
    await this.#converter.onManifestPut({ repository, ...stored })
    return states.get(repository, manifest)
  }
}

/** A record worth asking again for: a failed conversion, a while ago. */
function stale(status: ConversionStatus): boolean {
  return (
    status.state === 'failed' && Date.now() - Date.parse(status.updatedAt) > RETRY_FAILED_AFTER_MS
  )
}
