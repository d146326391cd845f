import { createHash, randomUUID } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { digestHex, isDigest, type Digest } from '../../runtime/oci/index.ts'
import { isNotFound, syncDir } from '../store/atomic-files.ts'
import { chunkCount, chunkLength } from './chunk-math.ts'

/**
 * The disk half of the proxy's chunk cache. Layout under `root`:
 *
 *   blobs/<hex>/meta.json   {"size":N,"chunkSize":C}; written (synced, renamed) before any chunk
 *   blobs/<hex>/<index>     chunk <index>: bytes index*C .. min((index+1)*C, N)-1 of the blob
 *   blobs/<hex>/verified    empty marker: every chunk is present and the whole hashed to <hex>
 *   tmp/<uuid>              a file being written; everything here is deleted at open
 *
 * Crash safety (SIGKILL at any moment): a chunk is written to tmp/, fsynced, renamed into
 * blobs/<hex>/ and the directory fsynced, so a chunk file that exists is whole. Open checks that
 * every chunk file has exactly the length its index implies (and drops any that does not), and
 * drops blob directories without a readable meta.json. `verified` is written only after the hash
 * of all chunks matched, so a restart never trusts a blob that was not verified.
 *
 * Size bound: the chunk bytes on disk; past `maxBytes`, least recently used whole blobs are
 * evicted (renamed into tmp/, then deleted). Blob granularity keeps `verified` meaningful: a
 * blob is either on disk with its verification state, or gone.
 */
export class DiskChunkStore {
  readonly root: string
  readonly chunkSize: number
  readonly maxBytes: number
  /** Insertion order = least recently used first (touch() moves a blob to the end). */
  readonly #blobs = new Map<Digest, DiskBlob>()
  readonly #metaWrites = new Map<Digest, Promise<void>>()
  #bytes = 0

  private constructor(root: string, chunkSize: number, maxBytes: number) {
    this.root = root
    this.chunkSize = chunkSize
    this.maxBytes = maxBytes
  }

  /** Opens (creating) the store and rebuilds its index from what is on disk. */
  static async open(root: string, options: { chunkSize: number; maxBytes: number }): Promise<DiskChunkStore> {
    const store = new DiskChunkStore(root, options.chunkSize, options.maxBytes)
    await rm(store.#tmpDir, { recursive: true, force: true })
    await mkdir(store.#tmpDir, { recursive: true })
    await mkdir(store.#blobsDir, { recursive: true })
    await store.#scan()
    return store
  }

  /** Bytes of chunks on disk. */
  get bytes(): number {
    return this.#bytes
  }

  blob(digest: Digest): Readonly<DiskBlob> | undefined {
    return this.#blobs.get(digest)
  }

  has(digest: Digest, index: number): boolean {
    return this.#blobs.get(digest)?.present.has(index) ?? false
  }

  /** Marks the blob most recently used. */
  touch(digest: Digest): void {
    const blob = this.#blobs.get(digest)
    if (!blob) return
    this.#blobs.delete(digest)
    this.#blobs.set(digest, blob)
  }

  /** The chunk's bytes, or undefined when it is not (or no longer) on disk. */
  async read(digest: Digest, index: number): Promise<Buffer | undefined> {
    if (!this.has(digest, index)) return undefined
    try {
      return await readFile(this.#chunkPath(digest, index))
    } catch (err) {
      if (isNotFound(err)) return undefined // evicted meanwhile
      throw err
    }
  }

  /** Stores a chunk durably; it becomes visible (has/read) only once it is whole on disk. */
  async write(digest: Digest, size: number, index: number, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength !== chunkLength(size, this.chunkSize, index)) {
      throw new RangeError(`chunk ${index} of ${digest} has ${bytes.byteLength} bytes`)
    }
    await this.#ensureBlob(digest, size)
    const tmp = join(this.#tmpDir, randomUUID())
    await writeSynced(tmp, bytes)
    const blob = this.#blobs.get(digest)
    if (!blob) return void (await rm(tmp, { force: true })) // evicted or invalidated meanwhile
    await rename(tmp, this.#chunkPath(digest, index))
    await syncDir(this.#blobDir(digest))
    if (blob.present.has(index) || this.#blobs.get(digest) !== blob) return
    blob.present.add(index)
    this.#bytes += bytes.byteLength
    this.touch(digest)
    await this.#evict(digest)
  }

  /** sha256 of the chunks in order; undefined if a chunk is missing. */
  async hash(digest: Digest): Promise<string | undefined> {
    const blob = this.#blobs.get(digest)
    if (!blob) return undefined
    const hash = createHash('sha256')
    for (let i = 0; i < chunkCount(blob.size, this.chunkSize); i++) {
      const bytes = await this.read(digest, i)
      if (!bytes) return undefined
      hash.update(bytes)
    }
    return `sha256:${hash.digest('hex')}`
  }

  async markVerified(digest: Digest): Promise<void> {
    const blob = this.#blobs.get(digest)
    if (!blob) return
    const tmp = join(this.#tmpDir, randomUUID())
    await writeSynced(tmp, new Uint8Array(0))
    await rename(tmp, join(this.#blobDir(digest), 'verified'))
    await syncDir(this.#blobDir(digest))
    blob.verified = true
  }

  /** Removes a blob and every chunk of it (eviction, or a digest mismatch). */
  async remove(digest: Digest): Promise<void> {
    const blob = this.#blobs.get(digest)
    if (!blob) return
    this.#blobs.delete(digest)
    this.#bytes -= bytesOf(blob, this.chunkSize)
    // Rename first: the blob disappears in one atomic step, then the files go at leisure.
    const grave = join(this.#tmpDir, randomUUID())
    try {
      await rename(this.#blobDir(digest), grave)
    } catch (err) {
      if (!isNotFound(err)) throw err
      return
    }
    await rm(grave, { recursive: true, force: true })
  }

  get #blobsDir(): string {
    return join(this.root, 'blobs')
  }

  get #tmpDir(): string {
    return join(this.root, 'tmp')
  }

  #blobDir(digest: Digest): string {
    return join(this.#blobsDir, digestHex(digest))
  }

  #chunkPath(digest: Digest, index: number): string {
    return join(this.#blobDir(digest), String(index))
  }

  async #ensureBlob(digest: Digest, size: number): Promise<void> {
    if (this.#blobs.has(digest)) return
    let pending = this.#metaWrites.get(digest)
    if (!pending) {
      pending = this.#writeMeta(digest, size).finally(() => this.#metaWrites.delete(digest))
      this.#metaWrites.set(digest, pending)
    }
    await pending
  }

  async #writeMeta(digest: Digest, size: number): Promise<void> {
    const dir = this.#blobDir(digest)
    await mkdir(dir, { recursive: true })
    const tmp = join(this.#tmpDir, randomUUID())
    await writeSynced(tmp, JSON.stringify({ size, chunkSize: this.chunkSize }))
    await rename(tmp, join(dir, 'meta.json'))
    await syncDir(dir)
    await syncDir(this.#blobsDir)
    this.#blobs.set(digest, { digest, size, present: new Set(), verified: false })
  }

  /** Evicts least recently used blobs (never `keep`) until the store fits. */
  async #evict(keep: Digest): Promise<void> {
    for (const digest of [...this.#blobs.keys()]) {
      if (this.#bytes <= this.maxBytes) return
      if (digest !== keep) await this.remove(digest)
    }
  }

  async #scan(): Promise<void> {
    const found: { blob: DiskBlob; mtime: number }[] = []
    for (const hex of await readdir(this.#blobsDir)) {
      const blob = await this.#load(hex)
      if (blob) found.push(blob)
      else await rm(join(this.#blobsDir, hex), { recursive: true, force: true })
    }
    found.sort((a, b) => a.mtime - b.mtime)
    for (const { blob } of found) {
      this.#blobs.set(blob.digest, blob)
      this.#bytes += bytesOf(blob, this.chunkSize)
    }
    if (found.length > 0) await this.#evict('' as Digest)
  }

  /** A blob directory as a previous process left it, or undefined when it is unusable. */
  async #load(hex: string): Promise<{ blob: DiskBlob; mtime: number } | undefined> {
    const digest = `sha256:${hex}`
    if (!isDigest(digest)) return undefined
    const dir = this.#blobDir(digest)
    let meta: Meta
    try {
      meta = metaSchema.parse(JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')))
    } catch {
      return undefined // killed before meta.json landed, or a different chunk size: start over
    }
    if (meta.chunkSize !== this.chunkSize) return undefined
    const blob: DiskBlob = { digest, size: meta.size, present: new Set(), verified: false }
    let marker = false
    for (const name of await readdir(dir)) {
      if (name === 'verified') marker = true
      if (!/^\d+$/.test(name)) continue
      const index = Number(name)
      const length = (await stat(join(dir, name))).size
      const expected = index < chunkCount(meta.size, this.chunkSize) ? chunkLength(meta.size, this.chunkSize, index) : -1
      if (length === expected) blob.present.add(index)
      else await rm(join(dir, name), { force: true })
    }
    blob.verified = marker && blob.present.size === chunkCount(meta.size, this.chunkSize)
    if (marker && !blob.verified) await rm(join(dir, 'verified'), { force: true })
    return { blob, mtime: (await stat(dir)).mtimeMs }
  }
}

export interface DiskBlob {
  digest: Digest
  size: number
  /** Indexes of the chunks whole on disk. */
  present: Set<number>
  verified: boolean
}

const metaSchema = z.object({ size: z.number().int().nonnegative(), chunkSize: z.number().int().positive() })
type Meta = z.infer<typeof metaSchema>

function bytesOf(blob: DiskBlob, chunkSize: number): number {
  let total = 0
  for (const index of blob.present) total += chunkLength(blob.size, chunkSize, index)
  return total
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx')
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
