import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { IndexTree } from '../../runtime/format/index-tree.ts'
import { digestHex, type Digest } from '../../runtime/oci/digest.ts'

/**
 * Opened indexes (JSON parsed into an FsTree, or binary read in place) by index blob digest, so an
 * image mounted again on this host (its last lease went, then a cold start came back: scale to
 * zero and up again) skips fetching, verifying and opening its index. In memory, bounded by the
 * total number of entries held, least recently used first out; with a directory, the index blobs
 * themselves are kept on disk too (`<dir>/<hex>`, written by rename, read back through the same
 * digest check as a fetched blob), so a host restarted, or one whose memory bound dropped the
 * index, never fetches an index it had.
 */
export class IndexCache {
  readonly #maxEntries: number
  readonly #dir: string | undefined
  readonly #indexes = new Map<Digest, IndexTree>()
  #entries = 0

  constructor(maxEntries = 200_000, dir?: string) {
    this.#maxEntries = maxEntries
    this.#dir = dir
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

  /** The index blob kept on disk, unverified (the caller opens it with its digest), if any. */
  async readBlob(digest: Digest): Promise<Uint8Array | undefined> {
    if (!this.#dir) return undefined
    return readFile(join(this.#dir, digestHex(digest))).catch(() => undefined)
  }

  /** Keeps a verified index blob on disk. Best effort: a failure only means a fetch next time. */
  async storeBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    if (!this.#dir) return
    const path = join(this.#dir, digestHex(digest))
    const tmp = `${path}.${process.pid}.tmp`
    try {
      await mkdir(this.#dir, { recursive: true })
      await writeFile(tmp, bytes)
      await rename(tmp, path)
    } catch {
      await rm(tmp, { force: true })
    }
  }

  async clear(): Promise<void> {
    this.#indexes.clear()
    this.#entries = 0
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true })
  }
}
