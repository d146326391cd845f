import { LRUCache } from 'lru-cache'
import { Counter, type Registry } from 'prom-client'
import { describeError } from '../../runtime/errors.ts'
import { isOciError, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
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
import type { OutputTarget } from '../convert/output-target.ts'
import type { EdgeLogger } from '../observability/edge-logger.ts'
import type { DiskStore } from '../store/disk-store.ts'
import type { ProxyBackend } from './proxy-backend.ts'

/** After a refusal, the upstream is tried again for a repository once this long has passed. */
const RETRY_REFUSED_AFTER_MS = 10 * 60_000

/**
 * A proxy edge whose upstream may refuse the edge's own pushes (README.md "Images pushed
 * elsewhere"): a read-only registry (distribution's `maintenance: readonly` answers 405), or
 * credentials that may pull and not push (401, 403). The streaming artifacts and profiles the
 * edge makes are then kept in an origin store of its own (`<store>/local`) and served as if the
 * upstream had them, so hosts stream the image anyway:
 *
 * - Reads merge both: a manifest or blob by digest is looked for here first (local disk), then
 *   upstream; a referrers list is the upstream's plus the kept ones. Tags and the catalog are the
 *   upstream's alone (nothing kept has a tag).
 * - Clients' writes go upstream as before, refusals included: only the edge's own outputs fall
 *   back (`write`).
 * - `write` tries the upstream unless it refused the edge for that repository within the last
 *   ten minutes (or `publishUpstream` is off); on a refusal it writes the whole output here
 *   instead (outputs are content-addressed: writing again what half reached the upstream is safe).
 */
export class KeptArtifactsBackend implements RegistryBackend, OutputTarget {
  readonly upstream: ProxyBackend
  readonly local: DiskStore
  readonly #publishUpstream: boolean
  readonly #logger: EdgeLogger
  readonly #published: Counter<'target'>
  /** repository → when the upstream last refused the edge's push there. */
  readonly #refused = new Map<string, number>()
  /** Digests the last stat found here: `readBlob` reads them from the local store. */
  readonly #kept = new LRUCache<Digest, true>({ max: 100_000 })

  constructor(o: {
    upstream: ProxyBackend
    local: DiskStore
    /** False: never push outputs upstream, keep them all here (default true). */
    publishUpstream?: boolean
    logger: EdgeLogger
    metricsRegistry: Registry
  }) {
    this.upstream = o.upstream
    this.local = o.local
    this.#publishUpstream = o.publishUpstream ?? true
    this.#logger = o.logger
    this.#published = new Counter({
      name: 'thaw_edge_outputs_published_total',
      help: "Streaming artifacts and profiles the edge stored, by target: upstream, or local when the upstream refused the edge's pushes or publishUpstream is off",
      labelNames: ['target'],
      registers: [o.metricsRegistry],
    })
  }

  async write<T>(repository: string, write: (backend: RegistryBackend) => Promise<T>): Promise<T> {
    if (this.#upstreamTakes(repository)) {
      try {
        const done = await write(this.upstream)
        this.#refused.delete(repository)
        this.#published.inc({ target: 'upstream' })
        return done
      } catch (err) {
        if (!isPushRefused(err)) throw err
        this.#refused.set(repository, Date.now())
        this.#logger.warn("the upstream refuses the edge's pushes; keeping its outputs here", {
          repository,
          error: describeError(err),
        })
      }
    }
    const done = await write(this.local)
    this.#published.inc({ target: 'local' })
    return done
  }

  async getManifest(repository: string, ref: ManifestLookup): Promise<StoredManifest | undefined> {
    if (ref.digest !== undefined) {
      const kept = await this.local.getManifest(repository, ref)
      if (kept) return kept
    }
    return this.upstream.getManifest(repository, ref)
  }

  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const [upstream, kept] = await Promise.all([
      this.upstream.listReferrers(repository, subject),
      this.local.listReferrers(repository, subject),
    ])
    const seen = new Set(upstream.map((d) => d.digest))
    return [...upstream, ...kept.filter((d) => !seen.has(d.digest))].sort((a, b) =>
      a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0,
    )
  }

  async statBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const kept = await this.local.statBlob(repository, digest)
    if (kept) {
      this.#kept.set(digest, true)
      return kept
    }
    this.#kept.delete(digest)
    return this.upstream.statBlob(repository, digest)
  }

  readBlob(digest: Digest, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array> {
    const from = this.#kept.has(digest) ? this.local : this.upstream
    return from.readBlob(digest, range, signal)
  }

  /** A kept manifest is deleted here; any other upstream. */
  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    if (await this.local.deleteManifest(repository, digest)) return true
    return this.upstream.deleteManifest(repository, digest)
  }

  deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.upstream.deleteTag(repository, tag)
  }

  listTags(repository: string): Promise<string[] | undefined> {
    return this.upstream.listTags(repository)
  }

  listRepositories(): Promise<string[]> {
    return this.upstream.listRepositories()
  }

  deleteBlob(): Promise<boolean> {
    return this.upstream.deleteBlob()
  }

  mountBlob(repository: string, from: string, digest: Digest): Promise<boolean> {
    return this.upstream.mountBlob(repository, from, digest)
  }

  putManifest(repository: string, manifest: ManifestWrite): Promise<void> {
    return this.upstream.putManifest(repository, manifest)
  }

  startUpload(repository: string, client?: string): Promise<UploadStatus> {
    return this.upstream.startUpload(repository, client)
  }

  getUpload(repository: string, id: string): Promise<UploadStatus> {
    return this.upstream.getUpload(repository, id)
  }

  appendUpload(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus> {
    return this.upstream.appendUpload(repository, id, chunk)
  }

  finishUpload(repository: string, id: string, digest: Digest): Promise<BlobInfo> {
    return this.upstream.finishUpload(repository, id, digest)
  }

  cancelUpload(repository: string, id: string): Promise<void> {
    return this.upstream.cancelUpload(repository, id)
  }

  async close(): Promise<void> {
    await Promise.all([this.upstream.close(), this.local.close()])
  }

  /**
   * Whether the upstream still has image `digest` (the GC's question before it collects kept
   * referrers of a deleted image). An unreachable upstream counts as yes: nothing is lost.
   */
  async upstreamHasManifest(repository: string, digest: Digest): Promise<boolean> {
    try {
      return (await this.upstream.getManifest(repository, { digest })) !== undefined
    } catch {
      return true // upstream unreachable: keep what refers to it
    }
  }

  #upstreamTakes(repository: string): boolean {
    if (!this.#publishUpstream) return false
    const refused = this.#refused.get(repository)
    return refused === undefined || Date.now() - refused > RETRY_REFUSED_AFTER_MS
  }
}

/**
 * The upstream will not take the edge's writes: 401 (credentials that may not push), 403
 * (denied), 405 (distribution in read-only maintenance mode answers UNSUPPORTED).
 */
export function isPushRefused(err: unknown): boolean {
  return (
    isOciError(err) &&
    ([401, 403, 405].includes(err.status) ||
      err.code === 'DENIED' ||
      err.code === 'UNAUTHORIZED' ||
      err.code === 'UNSUPPORTED')
  )
}
