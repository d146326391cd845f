import type { IndexTree } from '../../runtime/format/index-tree.ts'
import type { Digest } from '../../runtime/oci/digest.ts'

/**
 * Opened indexes (JSON parsed into an FsTree, or binary read in place) by index blob digest, so an image mounted again on this host (its last lease
 * went, then a cold start came back: scale to zero and up again) skips fetching, verifying and
 * parsing its index (0.2-0.4 s for 50 000 files). Bounded by the total number of entries held,
 * least recently used first out. The digest is the blob's: a hit is the same verified bytes.
 */
export class IndexCache {
  readonly #maxEntries: number
  readonly #indexes = new Map<Digest, IndexTree>()
  #entries = 0

  constructor(maxEntries = 200_000) {
    this.#maxEntries = maxEntries
  }

  get(digest: Digest): IndexTree | undefined {
    const index = this.#indexes.get(digest)
    if (index) {
      this.#indexes.delete(digest)
      this.#indexes.set(digest, index)
    }
    return index
  }

  set(digest: Digest, index: IndexTree): void {
    if (this.#indexes.has(digest) || index.entryCount > this.#maxEntries) return
    this.#indexes.set(digest, index)
    this.#entries += index.entryCount
    for (const [oldest, old] of this.#indexes) {
      if (this.#entries <= this.#maxEntries) break
      this.#indexes.delete(oldest)
      this.#entries -= old.entryCount
    }
  }

  clear(): void {
    this.#indexes.clear()
    this.#entries = 0
  }
}
