import { mkdir, readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex, type Digest } from '../../runtime/oci/digest.ts'
import { CachedBlob, JOURNAL_RECORD_BYTES, parseJournal } from './cached-blob.ts'
import { readFile } from 'node:fs/promises'

/**
 * The machine's frame cache, content-addressed by streaming-blob digest and shared by every image
 * (a base layer used by ten images is fetched once):
 *
 *   <cacheDir>/blobs/<sha256 hex>.data      decoded tar stream, sparse (see cached-blob.ts)
 *   <cacheDir>/blobs/<sha256 hex>.journal   frames present
 *
 * Bounded by `maxBytes` of decoded frames: when over, whole blobs that no mount holds are evicted,
 * least recently used first (journal unlinked before data, so a crash in between leaves data
 * without a journal: unused, removed at the next start).
 */
export class BlobCache {
  readonly #dir: string
  readonly #maxBytes: number
  readonly #open = new Map<string, { blob: Promise<CachedBlob>; refs: number }>()
  /** Blobs on disk that no mount holds: hex → [bytes, last used ms]. */
  readonly #idle = new Map<string, { bytes: number; lastUsed: number }>()
  #closed = false

  private constructor(dir: string, maxBytes: number) {
    this.#dir = dir
    this.#maxBytes = maxBytes
  }

  static async open(cacheDir: string, maxBytes: number): Promise<BlobCache> {
    const cache = new BlobCache(join(cacheDir, 'blobs'), maxBytes)
    await mkdir(cache.#dir, { recursive: true })
    await cache.#scan()
    return cache
  }

  /** A blob for a mount to use; it is not evicted until every acquire is released. */
  async acquire(digest: Digest): Promise<CachedBlob> {
    if (this.#closed) throw new Error('the blob cache is closed')
    const hex = digestHex(digest)
    let entry = this.#open.get(hex)
    if (!entry) {
      this.#idle.delete(hex)
      const blob = CachedBlob.open(hex, this.#path(hex, 'data'), this.#path(hex, 'journal'))
      entry = { blob, refs: 0 }
      this.#open.set(hex, entry)
      blob.catch(() => this.#open.delete(hex))
    }
    entry.refs++
    return entry.blob
  }

  async release(blob: CachedBlob): Promise<void> {
    const entry = this.#open.get(blob.hex)
    if (!entry || --entry.refs > 0) return
    this.#open.delete(blob.hex)
    await blob.close()
    this.#idle.set(blob.hex, { bytes: blob.presentBytes, lastUsed: blob.lastUsed })
    await this.enforceLimit()
  }

  /** Bytes of decoded frames on disk, in use or not. */
  async totalBytes(): Promise<number> {
    let n = 0
    for (const { blob } of this.#open.values()) n += (await blob).presentBytes
    for (const { bytes } of this.#idle.values()) n += bytes
    return n
  }

  /** Evicts idle blobs, least recently used first, until the cache fits (or none is idle). */
  async enforceLimit(): Promise<void> {
    let total = await this.totalBytes()
    const lru = [...this.#idle].sort((a, b) => a[1].lastUsed - b[1].lastUsed)
    for (const [hex, { bytes }] of lru) {
      if (total <= this.#maxBytes) break
      await this.#remove(hex)
      total -= bytes
    }
  }

  /** Removes every blob that no mount holds. */
  async clear(): Promise<void> {
    for (const hex of [...this.#idle.keys()]) await this.#remove(hex)
  }

  /** Closes open blobs (their files stay). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const open = [...this.#open.values()]
    this.#open.clear()
    await Promise.all(open.map(async (e) => (await e.blob).close().catch(() => {})))
  }

  async #remove(hex: string): Promise<void> {
    this.#idle.delete(hex)
    await unlink(this.#path(hex, 'journal')).catch(() => {})
    await unlink(this.#path(hex, 'data')).catch(() => {})
  }

  /** Loads what is on disk: sizes from journals, recency from mtimes; orphans removed. */
  async #scan(): Promise<void> {
    const names = new Set(await readdir(this.#dir))
    for (const name of names) {
      const [hex, ext] = name.split('.')
      if (!hex || !/^[0-9a-f]{64}$/.test(hex)) continue
      if (ext === 'data' && !names.has(`${hex}.journal`)) {
        await unlink(join(this.#dir, name)).catch(() => {})
        continue
      }
      if (ext !== 'journal') continue
      const path = join(this.#dir, name)
      const bytes = await readFile(path)
      const records = parseJournal(bytes.subarray(0, bytes.length - (bytes.length % JOURNAL_RECORD_BYTES)))
      const size = records.reduce((n, r) => n + r.ulen, 0)
      this.#idle.set(hex, { bytes: size, lastUsed: (await stat(path)).mtimeMs })
    }
  }

  #path(hex: string, ext: 'data' | 'journal'): string {
    return join(this.#dir, `${hex}.${ext}`)
  }
}
