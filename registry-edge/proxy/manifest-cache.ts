import { LRUCache } from 'lru-cache'
import type { Digest } from '../../runtime/oci/index.ts'
import type { StoredManifest } from '../backend/registry-backend.ts'

export interface ManifestCacheOptions {
  /** How long a tag's resolution is trusted before the upstream is asked again. */
  tagTtlMs: number
  /** Size bound of the cached manifest bytes. */
  maxBytes: number
  /** The clock; for tests. */
  now?: () => number
}

/**
 * Manifests resolved upstream. By digest they never change (the bytes were checked against the
 * digest when fetched), so they stay until the size bound evicts them. A tag can move upstream at
 * any time, so its resolution is fresh for `tagTtlMs` only; past that it is stale: the proxy asks
 * the upstream again, and serves a stale one only when the upstream cannot be reached.
 * Keys include the repository: a manifest is known in a repository only once seen there.
 */
export class ManifestCache {
  readonly #tagTtlMs: number
  readonly #now: () => number
  readonly #byDigest: LRUCache<string, StoredManifest>
  readonly #tags: LRUCache<string, { manifest: StoredManifest; fetchedAt: number }>

  constructor(options: ManifestCacheOptions) {
    this.#tagTtlMs = options.tagTtlMs
    this.#now = options.now ?? Date.now
    const sizeCalculation = (m: StoredManifest) => Math.max(1, m.bytes.byteLength)
    this.#byDigest = new LRUCache({ maxSize: Math.max(1, options.maxBytes), sizeCalculation })
    this.#tags = new LRUCache({
      maxSize: Math.max(1, options.maxBytes),
      sizeCalculation: (e) => sizeCalculation(e.manifest),
    })
  }

  byDigest(repository: string, digest: Digest): StoredManifest | undefined {
    return this.#byDigest.get(`${repository}@${digest}`)
  }

  /** The tag's manifest while fresh; with `stale`, also after its TTL ran out. */
  byTag(repository: string, tag: string, options: { stale?: boolean } = {}): StoredManifest | undefined {
    const entry = this.#tags.get(`${repository}:${tag}`)
    if (!entry) return undefined
    return options.stale || this.#now() - entry.fetchedAt < this.#tagTtlMs ? entry.manifest : undefined
  }

  put(repository: string, manifest: StoredManifest, tag?: string): void {
    this.#byDigest.set(`${repository}@${manifest.digest}`, manifest)
    if (tag !== undefined) this.#tags.set(`${repository}:${tag}`, { manifest, fetchedAt: this.#now() })
  }

  forgetTag(repository: string, tag: string): void {
    this.#tags.delete(`${repository}:${tag}`)
  }

  /** Drops the manifest and every tag of the repository pointing at it. */
  forgetDigest(repository: string, digest: Digest): void {
    this.#byDigest.delete(`${repository}@${digest}`)
    for (const [key, entry] of this.#tags.entries()) {
      if (key.startsWith(`${repository}:`) && entry.manifest.digest === digest) this.#tags.delete(key)
    }
  }
}
