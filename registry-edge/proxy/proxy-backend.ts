import { createReadStream } from 'node:fs'
import { join, resolve } from 'node:path'
import { LRUCache } from 'lru-cache'
import { describeError, isThawError } from '../../runtime/errors.ts'
import { OciError, isOciError, referrersTag, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import { createRegistryClient, type CredentialsOption, type RegistryClient } from '../../runtime/oci/remote/index.ts'
import type {
  BlobInfo,
  ByteRange,
  ManifestLookup,
  ManifestWrite,
  RegistryBackend,
  StoredManifest,
  UploadChunk,
  UploadStatus,
} from '../backend/registry-backend.ts'
import { silentLogger, type EdgeLogger } from '../observability/edge-logger.ts'
import type { EdgeMetrics } from '../observability/edge-metrics.ts'
import { ChunkCache } from './chunk-cache.ts'
import { DiskChunkStore } from './disk-chunk-store.ts'
import { ManifestCache } from './manifest-cache.ts'
import type { UploadLimits } from '../store/upload-limits.ts'
import { ProxyUploads } from './proxy-uploads.ts'
import { upstreamBlobSource } from './upstream-blobs.ts'

export interface ProxyBackendOptions {
  /** The upstream registry's base URL, e.g. `http://registry.internal:5000`. */
  upstream: string
  /** Where the chunk cache (`cache/`) and buffered upload sessions (`uploads/`) live. */
  root: string
  metrics: EdgeMetrics
  logger?: EdgeLogger
  credentials?: CredentialsOption
  /** How long a tag resolved upstream is reused. Default 30 s. */
  tagTtlMs?: number
  /** Memory LRU of blob chunks, bytes. Default 256 MiB. */
  memoryCacheBytes?: number
  /** Disk cache of blob chunks, bytes. Default 10 GiB. */
  diskCacheBytes?: number
  /** Chunk size; changing it empties the disk cache at the next start. Default 1 MiB. */
  chunkSize?: number
  /** Blobs filled in the background at once; 0 = no background fill. Default 2. */
  fillConcurrency?: number
  /** A client to use instead of making one (tests); not closed by the backend. */
  client?: RegistryClient
  /** Limits of the upload sessions buffered here (store/upload-limits.ts for the defaults). */
  uploads?: Partial<UploadLimits>
}

/**
 * Opens a proxy (pull-through) backend: every repository of the upstream, served through a
 * manifest cache and a chunk cache (see README.md, "Proxy mode").
 *
 * @example
 *   const backend = await openProxyBackend({ upstream: 'http://127.0.0.1:5000', root: dir, metrics })
 *   const edge = await createRegistryEdge({ backend })
 */
export async function openProxyBackend(options: ProxyBackendOptions): Promise<ProxyBackend> {
  const root = resolve(options.root)
  const logger = options.logger ?? silentLogger
  const { metrics } = options
  const client = options.client ?? createRegistryClient({ registry: options.upstream, credentials: options.credentials, userAgent: 'thaw-edge' })
  const disk = await DiskChunkStore.open(join(root, 'cache'), {
    chunkSize: options.chunkSize ?? 1024 * 1024,
    maxBytes: options.diskCacheBytes ?? 10 * 1024 ** 3,
  })
  const cache = new ChunkCache({
    disk,
    memoryBytes: options.memoryCacheBytes ?? 256 * 1024 * 1024,
    fillConcurrency: options.fillConcurrency,
    logger,
    events: { hit: (layer) => metrics.cacheHits.inc({ layer }), miss: () => metrics.cacheMisses.inc() },
  })
  const uploads = await ProxyUploads.open(root, client, {
    limits: options.uploads,
    events: metrics.uploadEvents(),
  })
  const manifests = new ManifestCache({ tagTtlMs: options.tagTtlMs ?? 30_000, maxBytes: 32 * 1024 * 1024 })
  return new ProxyBackend({ client, ownsClient: !options.client, cache, disk, uploads, manifests, metrics, logger })
}

interface ProxyParts {
  client: RegistryClient
  ownsClient: boolean
  cache: ChunkCache
  disk: DiskChunkStore
  uploads: ProxyUploads
  manifests: ManifestCache
  metrics: EdgeMetrics
  logger: EdgeLogger
}

/**
 * The RegistryBackend of a proxy edge. Reads resolve upstream through the caches; writes go to
 * the upstream (blobs buffered and verified here first); the upstream's own rules (auth, what it
 * accepts) apply behind the edge's.
 *
 * - Blob scoping: a blob is known in a repository once the upstream said so (HEAD, push or
 *   mount); that answer is remembered, so warm reads never go upstream. `readBlob` reads from the
 *   repository `statBlob` last found the blob in (the interface's contract: reads follow a stat).
 * - Referrers: the upstream's referrers API, or its `sha256-<hex>` fallback tag when it has none
 *   (distribution 2.8); a pushed referrer the upstream did not accept with `OCI-Subject` is added
 *   to that tag here (distribution-spec v1.1 "Pushing Manifests with Subject").
 */
export class ProxyBackend implements RegistryBackend {
  readonly cache: ChunkCache
  readonly #p: ProxyParts
  /** `<repository>@<digest>` → size, as the upstream answered. */
  readonly #known = new LRUCache<string, number>({ max: 100_000 })
  /** digest → the repository it was last found in, to fetch it from. */
  readonly #home = new LRUCache<Digest, { repository: string; size: number }>({ max: 100_000 })
  readonly #flights = new Map<string, Promise<unknown>>()
  #closed: Promise<void> | undefined

  constructor(parts: ProxyParts) {
    this.#p = parts
    this.cache = parts.cache
  }

  async getManifest(repository: string, ref: ManifestLookup): Promise<StoredManifest | undefined> {
    const { manifests } = this.#p
    const cached = ref.digest !== undefined ? manifests.byDigest(repository, ref.digest) : manifests.byTag(repository, ref.tag)
    if (cached) return cached
    const reference = ref.digest ?? ref.tag
    try {
      return await this.#once(`manifest ${repository}:${reference}`, async () => {
        const got = await this.#upstream('GET', () => this.#p.client.getManifest(repository, reference))
        const manifest = { digest: got.digest, mediaType: got.mediaType, bytes: got.bytes }
        manifests.put(repository, manifest, ref.tag)
        return manifest
      })
    } catch (err) {
      if (isNotFound(err)) {
        if (ref.tag !== undefined) manifests.forgetTag(repository, ref.tag)
        return undefined
      }
      const stale = ref.tag !== undefined ? manifests.byTag(repository, ref.tag, { stale: true }) : undefined
      if (!stale || !isOciError(err, 'UNAVAILABLE')) throw err
      this.#p.logger.warn('upstream unreachable; serving a stale tag', { repository, tag: ref.tag, error: describeError(err) })
      return stale
    }
  }

  async putManifest(repository: string, m: ManifestWrite): Promise<void> {
    const { client, manifests } = this.#p
    const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength)
    const pushed = await this.#upstream('PUT', () => client.putManifest(repository, m.tag ?? m.digest, bytes, m.mediaType))
    if (m.referrer && !pushed.subjectAccepted) {
      const { subject, descriptor } = m.referrer
      await this.#upstream('PUT', () => client.addReferrerToFallbackTag(repository, subject, descriptor))
      manifests.forgetTag(repository, referrersTag(subject))
    }
    manifests.put(repository, { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes }, m.tag)
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    this.#p.manifests.forgetDigest(repository, digest)
    return this.#deleteUpstream(repository, digest)
  }

  /**
   * A tag DELETE goes upstream. A registry that cannot delete tags (distribution 2.8 parses the
   * reference as a digest and answers 400 DIGEST_INVALID) is answered to the client as the spec's
   * "Deleting tags" says a registry without tag deletion does: 405 UNSUPPORTED.
   */
  async deleteTag(repository: string, tag: string): Promise<boolean> {
    this.#p.manifests.forgetTag(repository, tag)
    try {
      return await this.#deleteUpstream(repository, tag)
    } catch (err) {
      if (!isOciError(err, 'DIGEST_INVALID')) throw err
      throw new OciError('UNSUPPORTED', `the upstream registry does not delete tags (${err.message})`, { cause: err })
    }
  }

  async listTags(repository: string): Promise<string[] | undefined> {
    try {
      return (await this.#upstream('GET', () => this.#p.client.listTags(repository))).sort()
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async listRepositories(): Promise<string[]> {
    return (await this.#upstream('GET', () => this.#p.client.catalog())).sort()
  }

  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const found = await this.#upstream('GET', () => this.#p.client.referrers(repository, subject))
    return found.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  }

  async statBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const key = `${repository}@${digest}`
    const known = this.#known.get(key)
    if (known !== undefined) return this.#found(repository, digest, known)
    const size = await this.#once(`head ${key}`, async () => {
      try {
        return await this.#upstream('HEAD', () => this.#p.client.headBlob(repository, digest))
      } catch (err) {
        // Upstream down: a blob verified in the cache is still good to serve.
        const cached = this.#p.disk.blob(digest)
        if (isOciError(err, 'UNAVAILABLE') && cached?.verified) return cached.size
        throw err
      }
    })
    if (size === undefined) return undefined
    this.#known.set(key, size)
    return this.#found(repository, digest, size)
  }

  readBlob(digest: Digest, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array> {
    const home = this.#home.get(digest)
    if (!home) {
      return new ReadableStream({
        start: (c) => c.error(new OciError('BLOB_UNKNOWN', `blob ${digest} was not looked up before it was read`)),
      })
    }
    const source = upstreamBlobSource(this.#p.client, home.repository, digest, this.#p.metrics)
    return this.cache.read({ digest, size: home.size, source }, range, signal)
  }

  async deleteBlob(): Promise<boolean> {
    throw new OciError('UNSUPPORTED', 'a proxy edge does not delete blobs upstream')
  }

  async mountBlob(repository: string, from: string, digest: Digest): Promise<boolean> {
    const mounted = await this.#upstream('POST', () => this.#p.client.mountBlob(repository, from, digest))
    if (mounted) this.#known.delete(`${repository}@${digest}`) // the next stat learns its size
    return mounted
  }

  startUpload(repository: string, client?: string): Promise<UploadStatus> {
    return this.#p.uploads.start(repository, client)
  }

  getUpload(repository: string, id: string): Promise<UploadStatus> {
    return this.#p.uploads.status(repository, id)
  }

  appendUpload(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus> {
    return this.#p.uploads.append(repository, id, chunk)
  }

  finishUpload(repository: string, id: string, digest: Digest): Promise<BlobInfo> {
    return this.#upstream('PUT', () =>
      this.#p.uploads.finish(repository, id, digest, async (file, size) => {
        this.#known.set(`${repository}@${digest}`, size)
        this.#found(repository, digest, size)
        await this.#seed(file, digest, size)
      }),
    )
  }

  cancelUpload(repository: string, id: string): Promise<void> {
    return this.#p.uploads.cancel(repository, id)
  }

  close(): Promise<void> {
    return (this.#closed ??= (async () => {
      await this.cache.close()
      await this.#p.uploads.close()
      if (this.#p.ownsClient) await this.#p.client.close()
    })())
  }

  #found(repository: string, digest: Digest, size: number): BlobInfo {
    this.#home.set(digest, { repository, size })
    return { digest, size }
  }

  /** A pushed blob was verified before it went upstream: cache it, verified (best effort). */
  async #seed(file: string, digest: Digest, size: number): Promise<void> {
    if (size > this.#p.disk.maxBytes / 4 || this.#p.disk.blob(digest)?.verified) return
    const chunks = createReadStream(file, { highWaterMark: this.cache.chunkSize }) as AsyncIterable<Buffer>
    await this.cache.putVerified(digest, size, chunks).catch((err) => {
      this.#p.logger.warn('could not cache a pushed blob', { digest, error: describeError(err) })
    })
  }

  async #deleteUpstream(repository: string, reference: string): Promise<boolean> {
    try {
      await this.#upstream('DELETE', () => this.#p.client.deleteManifest(repository, reference))
      return true
    } catch (err) {
      if (isNotFound(err)) return false
      throw err
    }
  }

  /** Times an upstream call; a network failure becomes a 502 UNAVAILABLE for the client. */
  async #upstream<T>(method: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await call()
    } catch (err) {
      if (isThawError(err, 'REGISTRY_UNREACHABLE')) {
        throw new OciError('UNAVAILABLE', `upstream registry unreachable: ${err.message}`, { status: 502, cause: err })
      }
      throw err
    } finally {
      this.#p.metrics.upstreamDuration.observe({ method }, (performance.now() - started) / 1000)
    }
  }

  /** Single flight: concurrent calls with the same key share one run. */
  #once<T>(key: string, run: () => Promise<T>): Promise<T> {
    let flight = this.#flights.get(key) as Promise<T> | undefined
    if (!flight) {
      flight = run().finally(() => this.#flights.delete(key))
      this.#flights.set(key, flight)
    }
    return flight
  }
}

function isNotFound(err: unknown): boolean {
  return isOciError(err) && (err.status === 404 || err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN' || err.code === 'BLOB_UNKNOWN')
}
