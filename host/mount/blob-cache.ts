import { mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex, type Digest } from '../../runtime/oci/digest.ts'
import type { Frame } from '../../runtime/format/frame.ts'
import { CachedBlob, JOURNAL_RECORD_BYTES, parseJournal } from './cached-blob.ts'
import { readFile } from 'node:fs/promises'

/**
 * Which layer of which image a streaming blob holds, and in which generation of that image's
 * streaming artifact (a re-layout by a profile makes the next): a blob with a newer generation
 * of the same image and layer on disk is superseded.
 */
export interface BlobLineage {
  image: Digest
  layer: Digest
  generation: number
}

/** Where a frame's decoded bytes sit in a cached blob. */
interface FrameHome {
  hex: string
  coff: number
  uoff: number
  ulen: number
}

/**
 * The machine's frame cache, content-addressed by streaming-blob digest and shared by every image
 * (a base layer used by ten images is fetched once):
 *
 *   <cacheDir>/blobs/<sha256 hex>.data      decoded tar stream, sparse (see cached-blob.ts)
 *   <cacheDir>/blobs/<sha256 hex>.journal   frames present
 *   <cacheDir>/blobs/<sha256 hex>.frames    its frames: [sha256 hex, coff, uoff, ulen], JSON
 *   <cacheDir>/blobs/<sha256 hex>.lineage   its image, layer and generation (BlobLineage), JSON
 *
 * Frames are also known by content: the sha256 of a compressed frame names its decoded bytes
 * whatever blob holds it, so a frame another blob has (an earlier generation of a re-laid layer
 * keeps every frame the profile did not move, runtime/format README "Dedup by content") is
 * copied from there (`copyFrame`) instead of fetched again.
 *
 * Bounded by `maxBytes` of decoded frames: when over, whole blobs that no mount holds are evicted:
 * old generations first (a blob whose image and layer has a newer generation on disk, as the
 * `.lineage` files say, so the order holds across a host restart), then least recently used
 * first (journal unlinked before data, so a crash in between leaves data without a journal:
 * unused, removed at the next start).
 *
 * A blob's files are opened, closed and removed one step at a time (`#serially`): an acquire
 * waits for a removal or a close of the same blob under way, and a removal leaves a blob that
 * was acquired meanwhile alone. Interleaved, a removal that had unlinked the journal but not yet
 * the data let an open keep the old data file and make a new journal, which then named frames
 * whose bytes had gone with the unlinked file: the next open read them as an empty file (a node
 * failed with "exec format error" on /usr/bin/node, a cache clear racing its start).
 */
export class BlobCache {
  readonly #dir: string
  readonly #maxBytes: number
  readonly #open = new Map<string, { blob: Promise<CachedBlob>; refs: number }>()
  /** Blobs on disk that no mount holds: hex → [bytes, last used ms]. */
  readonly #idle = new Map<string, { bytes: number; lastUsed: number }>()
  /** Frames of blobs on disk by content (sha256 hex of the compressed frame): every blob with it. */
  readonly #byContent = new Map<string, FrameHome[]>()
  /** The frame hashes each blob contributed to #byContent. */
  readonly #contentOf = new Map<string, string[]>()
  /** Lineage of the blobs on disk that have one. */
  readonly #lineage = new Map<string, BlobLineage>()
  /** Per blob, the last open, close or removal of its files, which the next one waits for. */
  readonly #steps = new Map<string, Promise<unknown>>()
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

  /**
   * A blob for a mount to use; it is not evicted until every acquire is released. With its
   * `frames` (from the index) its frames become known by content, for later blobs to copy; with
   * its `lineage`, an older generation of it leaves the cache first.
   */
  async acquire(
    digest: Digest,
    frames?: readonly Frame[],
    lineage?: BlobLineage,
  ): Promise<CachedBlob> {
    if (this.#closed) throw new Error('the blob cache is closed')
    const hex = digestHex(digest)
    let entry = this.#open.get(hex)
    if (!entry) {
      this.#idle.delete(hex)
      const blob = this.#serially(hex, () =>
        CachedBlob.open(hex, this.#path(hex, 'data'), this.#path(hex, 'journal')),
      )
      entry = { blob, refs: 0 }
      this.#open.set(hex, entry)
      blob.catch(() => this.#open.delete(hex))
    }
    entry.refs++
    if (frames && !this.#contentOf.has(hex))
      await this.#serially(hex, () => this.#recordFrames(hex, frames))
    if (lineage && !this.#lineage.has(hex))
      await this.#serially(hex, () => this.#recordLineage(hex, lineage))
    return entry.blob
  }

  /** Whether another cached blob is known to hold `frame` (by content). */
  hasCopy(frame: Frame, target: CachedBlob): boolean {
    return this.#homeOf(frame, target) !== undefined
  }

  /**
   * Copies `frame` into `target` from another cached blob that holds the same content; false
   * (and that home forgotten) when it no longer has it. The bytes were verified against the
   * same sha256 when that blob stored them.
   */
  async copyFrame(frame: Frame, target: CachedBlob): Promise<boolean> {
    const home = this.#homeOf(frame, target)
    if (!home) return false
    const idleSince = this.#idle.get(home.hex)?.lastUsed
    const donor = await this.acquire(`sha256:${home.hex}` as Digest)
    // Being copied from is not being used: the old generation keeps its place in the LRU and
    // leaves the cache before the blobs mounts read.
    const lastUsed = idleSince ?? donor.lastUsed
    try {
      if (donor.has({ ...frame, coff: home.coff, uoff: home.uoff })) {
        const bytes = Buffer.allocUnsafe(home.ulen)
        if (donor.readInto(bytes, home.ulen, home.uoff) === home.ulen) {
          await target.store([frame], [bytes])
          return true
        }
      }
      this.#forget(digestHex(frame.digest), (h) => h === home) // the next round fetches it
      return false
    } finally {
      donor.lastUsed = lastUsed
      await this.release(donor)
    }
  }

  async release(blob: CachedBlob): Promise<void> {
    const entry = this.#open.get(blob.hex)
    if (!entry || --entry.refs > 0) return
    this.#open.delete(blob.hex)
    await this.#serially(blob.hex, async () => {
      await blob.close()
      // Acquired again while it closed: that acquire's open (the next step) holds it now.
      if (this.#open.has(blob.hex)) return
      this.#idle.set(blob.hex, { bytes: blob.presentBytes, lastUsed: blob.lastUsed })
    })
    await this.enforceLimit()
  }

  /** Bytes of decoded frames on disk, in use or not. */
  async totalBytes(): Promise<number> {
    let n = 0
    for (const { blob } of this.#open.values()) n += (await blob).presentBytes
    for (const { bytes } of this.#idle.values()) n += bytes
    return n
  }

  /**
   * Evicts idle blobs until the cache fits (or none is idle): superseded generations first, then
   * least recently used first.
   */
  async enforceLimit(): Promise<void> {
    let total = await this.totalBytes()
    if (total <= this.#maxBytes) return
    const superseded = this.#superseded()
    const order = [...this.#idle].sort(
      (a, b) =>
        Number(superseded.has(b[0])) - Number(superseded.has(a[0])) ||
        a[1].lastUsed - b[1].lastUsed,
    )
    for (const [hex, { bytes }] of order) {
      if (total <= this.#maxBytes) break
      if (await this.#remove(hex)) total -= bytes
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

  /** Blobs on disk whose image and layer have a newer generation on disk too. */
  #superseded(): Set<string> {
    const newest = new Map<string, number>()
    const key = (l: BlobLineage) => `${l.image} ${l.layer}`
    for (const l of this.#lineage.values()) {
      newest.set(key(l), Math.max(newest.get(key(l)) ?? -1, l.generation))
    }
    const out = new Set<string>()
    for (const [hex, l] of this.#lineage) if (l.generation < newest.get(key(l))!) out.add(hex)
    return out
  }

  /**
   * Removes an idle blob's files; false when it is not idle (acquired, or removed, meanwhile):
   * a blob a mount holds keeps its files.
   */
  async #remove(hex: string): Promise<boolean> {
    if (!this.#idle.delete(hex)) return false
    return this.#serially(hex, async () => {
      if (this.#open.has(hex)) return false // acquired since: its open waits for this step
      this.#lineage.delete(hex)
      for (const sha of this.#contentOf.get(hex) ?? []) this.#forget(sha, (h) => h.hex === hex)
      this.#contentOf.delete(hex)
      await unlink(this.#path(hex, 'journal')).catch(() => {})
      await unlink(this.#path(hex, 'frames')).catch(() => {})
      await unlink(this.#path(hex, 'lineage')).catch(() => {})
      await unlink(this.#path(hex, 'data')).catch(() => {})
      return true
    })
  }

  /** Runs `step` on blob `hex`'s files after the steps on them before it have settled. */
  #serially<T>(hex: string, step: () => Promise<T>): Promise<T> {
    const run = (this.#steps.get(hex) ?? Promise.resolve()).then(step)
    const settled = run.catch(() => {})
    this.#steps.set(hex, settled)
    void settled.then(() => {
      if (this.#steps.get(hex) === settled) this.#steps.delete(hex)
    })
    return run
  }

  async #recordLineage(hex: string, lineage: BlobLineage): Promise<void> {
    this.#lineage.set(hex, lineage)
    const path = this.#path(hex, 'lineage')
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(lineage))
    await rename(tmp, path)
  }

  /** A blob's `.lineage` file, or nothing (absent, torn or not ours). */
  async #readLineage(hex: string): Promise<BlobLineage | undefined> {
    try {
      const l = JSON.parse(await readFile(this.#path(hex, 'lineage'), 'utf8')) as BlobLineage
      const digest = (d: unknown) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d)
      const ok = digest(l.image) && digest(l.layer) && Number.isSafeInteger(l.generation)
      return ok ? { image: l.image, layer: l.layer, generation: l.generation } : undefined
    } catch {
      return undefined
    }
  }

  /** Writes `<hex>.frames` (temp and rename) and indexes the blob's frames by content. */
  async #recordFrames(hex: string, frames: readonly Frame[]): Promise<void> {
    const rows = frames.map((f) => [digestHex(f.digest), f.coff, f.uoff, f.ulen] as const)
    this.#index(hex, rows)
    const path = this.#path(hex, 'frames')
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(rows))
    await rename(tmp, path)
  }

  #index(hex: string, rows: readonly (readonly [string, number, number, number])[]): void {
    this.#contentOf.set(
      hex,
      rows.map((r) => r[0]),
    )
    for (const [sha, coff, uoff, ulen] of rows) {
      const homes = this.#byContent.get(sha) ?? []
      if (!homes.some((h) => h.hex === hex)) homes.push({ hex, coff, uoff, ulen })
      this.#byContent.set(sha, homes)
    }
  }

  #homeOf(frame: Frame, target: CachedBlob): FrameHome | undefined {
    const homes = this.#byContent.get(digestHex(frame.digest))
    return homes?.find((h) => h.hex !== target.hex && h.ulen === frame.ulen)
  }

  #forget(sha: string, which: (home: FrameHome) => boolean): void {
    const homes = this.#byContent.get(sha)?.filter((h) => !which(h))
    if (homes?.length) this.#byContent.set(sha, homes)
    else this.#byContent.delete(sha)
  }

  /** A blob's `.frames` file as it was written, or nothing (absent, torn or not ours). */
  async #readFrames(hex: string): Promise<[string, number, number, number][] | undefined> {
    try {
      const rows = JSON.parse(await readFile(this.#path(hex, 'frames'), 'utf8')) as unknown
      if (!Array.isArray(rows)) return undefined
      const ok = rows.every(
        (r) =>
          Array.isArray(r) &&
          r.length === 4 &&
          typeof r[0] === 'string' &&
          /^[0-9a-f]{64}$/.test(r[0]) &&
          r.slice(1).every((n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0),
      )
      return ok ? (rows as [string, number, number, number][]) : undefined
    } catch {
      return undefined
    }
  }

  /** Loads what is on disk: sizes from journals, recency from mtimes; orphans removed. */
  async #scan(): Promise<void> {
    const names = new Set(await readdir(this.#dir))
    for (const name of names) {
      const [hex, ext] = name.split('.')
      if (!hex || !/^[0-9a-f]{64}$/.test(hex)) continue
      const sidecar = ext === 'frames' || ext === 'lineage'
      if (name.endsWith('.tmp') || (sidecar && !names.has(`${hex}.journal`))) {
        await unlink(join(this.#dir, name)).catch(() => {})
        continue
      }
      if (ext === 'data' && !names.has(`${hex}.journal`)) {
        await unlink(join(this.#dir, name)).catch(() => {})
        continue
      }
      if (ext !== 'journal') continue
      const path = join(this.#dir, name)
      const bytes = await readFile(path)
      const records = parseJournal(
        bytes.subarray(0, bytes.length - (bytes.length % JOURNAL_RECORD_BYTES)),
      )
      const size = records.reduce((n, r) => n + r.ulen, 0)
      this.#idle.set(hex, { bytes: size, lastUsed: (await stat(path)).mtimeMs })
      const frames = await this.#readFrames(hex)
      if (frames) this.#index(hex, frames)
      const lineage = await this.#readLineage(hex)
      if (lineage) this.#lineage.set(hex, lineage)
    }
  }

  #path(hex: string, ext: 'data' | 'journal' | 'frames' | 'lineage'): string {
    return join(this.#dir, `${hex}.${ext}`)
  }
}
