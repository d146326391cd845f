import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import { OciError, type Digest } from '../../runtime/oci/index.ts'
import type { UploadChunk, UploadStatus } from '../backend/registry-backend.ts'
import { RangeInvalidError } from '../http/http-errors.ts'
import { isNotFound, readIfExists, type AtomicFiles } from './atomic-files.ts'
import { KeyedMutex } from './keyed-mutex.ts'
import { UPLOAD_ID, type StoreLayout } from './store-layout.ts'

/** `uploads/<id>/state.json`: who the session belongs to and when it started. */
const uploadStateSchema = z.object({ repository: z.string(), startedAt: z.number() })
export type UploadState = z.infer<typeof uploadStateSchema>

export function parseUploadState(text: string | undefined): UploadState | undefined {
  if (text === undefined) return undefined
  try {
    const result = uploadStateSchema.safeParse(JSON.parse(text))
    return result.success ? result.data : undefined
  } catch {
    return undefined
  }
}

/**
 * Blob upload sessions: `uploads/<id>/data` grows chunk by chunk; its size is the session's
 * offset. A chunk is all or nothing: if it fails midway (client gone, size wrong) the file is
 * truncated back. The running sha256 is kept in memory (copied per chunk so a failed chunk can be
 * rolled back); after a restart it is recomputed from the file. Sessions survive restarts, so a
 * client can resume after the edge was killed.
 */
export class UploadSessions {
  readonly #layout: StoreLayout
  readonly #atomic: AtomicFiles
  readonly #lock = new KeyedMutex()
  readonly #hashes = new Map<string, { hash: Hash; size: number }>()

  constructor(layout: StoreLayout, atomic: AtomicFiles) {
    this.#layout = layout
    this.#atomic = atomic
  }

  async start(repository: string): Promise<UploadStatus> {
    const id = randomUUID()
    await mkdir(this.#layout.upload(id), { recursive: true })
    await writeFile(this.#layout.uploadData(id), new Uint8Array(0), { flag: 'wx' })
    const state: UploadState = { repository, startedAt: Date.now() }
    await this.#atomic.write(this.#layout.uploadState(id), JSON.stringify(state))
    this.#hashes.set(id, { hash: createHash('sha256'), size: 0 })
    return { id, repository, offset: 0 }
  }

  /** Throws BLOB_UPLOAD_UNKNOWN unless the session exists and belongs to `repository`. */
  async status(repository: string, id: string): Promise<UploadStatus> {
    const unknown = new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} is unknown`)
    if (!UPLOAD_ID.test(id)) throw unknown
    const state = parseUploadState(await readIfExists(this.#layout.uploadState(id)))
    if (state?.repository !== repository) throw unknown
    try {
      return { id, repository, offset: (await stat(this.#layout.uploadData(id))).size }
    } catch (err) {
      if (isNotFound(err)) throw unknown
      throw err
    }
  }

  append(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus> {
    return this.#lock.run(id, async () => {
      const status = await this.status(repository, id)
      if (chunk.start !== undefined && chunk.start !== status.offset) {
        throw new RangeInvalidError(
          `chunk starts at ${chunk.start}, but the upload has ${status.offset} bytes`,
        )
      }
      if (chunk.declaredLength !== undefined && chunk.declaredLength !== chunk.length) {
        throw new OciError('SIZE_INVALID', `Content-Length ${chunk.declaredLength} disagrees with the chunk's ${chunk.length} bytes`)
      }
      const written = await this.#write(status, chunk)
      return { ...status, offset: status.offset + written }
    })
  }

  /**
   * Checks the session's bytes against `digest` and hands the synced file to `commit`, which
   * moves it into place; then the session is gone. A mismatch cancels the session: nothing of
   * it is kept.
   */
  finish(
    repository: string,
    id: string,
    digest: Digest,
    commit: (file: string) => Promise<void>,
  ): Promise<number> {
    return this.#lock.run(id, async () => {
      const status = await this.status(repository, id)
      const actual = `sha256:${(await this.#hashOf(status)).copy().digest('hex')}`
      if (actual !== digest) {
        await this.#remove(id)
        throw new OciError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`)
      }
      const file = this.#layout.uploadData(id)
      const handle = await open(file, 'r+')
      await handle.sync().finally(() => handle.close())
      await commit(file)
      await this.#remove(id)
      return status.offset
    })
  }

  cancel(repository: string, id: string): Promise<void> {
    return this.#lock.run(id, async () => {
      await this.status(repository, id)
      await this.#remove(id)
    })
  }

  async #write(status: UploadStatus, chunk: UploadChunk): Promise<number> {
    const hash = (await this.#hashOf(status)).copy()
    const handle = await open(this.#layout.uploadData(status.id), 'r+')
    let written = 0
    try {
      for await (const part of chunk.body) {
        chunk.signal?.throwIfAborted()
        if (chunk.length !== undefined && written + part.byteLength > chunk.length) {
          throw new OciError('SIZE_INVALID', `chunk is larger than its declared ${chunk.length} bytes`)
        }
        hash.update(part)
        await handle.write(part, 0, part.byteLength, status.offset + written)
        written += part.byteLength
      }
      if (chunk.length !== undefined && written !== chunk.length) {
        throw new OciError('SIZE_INVALID', `chunk has ${written} bytes, declared ${chunk.length}`)
      }
      this.#hashes.set(status.id, { hash, size: status.offset + written })
      return written
    } catch (err) {
      await handle.truncate(status.offset).catch(() => {})
      throw err
    } finally {
      await handle.close()
    }
  }

  /** The running hash of the session's bytes; recomputed from the file after a restart. */
  async #hashOf(status: UploadStatus): Promise<Hash> {
    const known = this.#hashes.get(status.id)
    if (known && known.size === status.offset) return known.hash
    const hash = createHash('sha256')
    for await (const part of createReadStream(this.#layout.uploadData(status.id))) {
      hash.update(part as Buffer)
    }
    this.#hashes.set(status.id, { hash, size: status.offset })
    return hash
  }

  async #remove(id: string): Promise<void> {
    this.#hashes.delete(id)
    await rm(this.#layout.upload(id), { recursive: true, force: true })
  }
}

