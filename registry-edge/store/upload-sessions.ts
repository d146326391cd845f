import { createHash, randomUUID, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises'
import { OciError, type Digest } from '../../runtime/oci/index.ts'
import type { UploadChunk, UploadStatus } from '../backend/registry-backend.ts'
import { RangeInvalidError } from '../http/http-errors.ts'
import { isNotFound, readIfExists, type AtomicFiles } from './atomic-files.ts'
import { KeyedMutex } from './keyed-mutex.ts'
import { OpenSessions } from './open-sessions.ts'
import { recoverUploads } from './recover-store.ts'
import { UPLOAD_ID, type StoreLayout } from './store-layout.ts'
import { parseUploadState, type UploadState } from './upload-state.ts'
import {
  BlobTooLargeError,
  DEFAULT_UPLOAD_LIMITS,
  TooManyUploadsError,
  type UploadEvents,
  type UploadLimits,
  type UploadRefusal,
} from './upload-limits.ts'

export interface UploadSessionsOptions {
  limits?: Partial<UploadLimits>
  events?: UploadEvents
}

/**
 * Blob upload sessions: `uploads/<id>/data` grows chunk by chunk; its size is the session's
 * offset. A chunk is all or nothing: if it fails midway (client gone, size wrong) the file is
 * truncated back. The running sha256 is kept in memory (copied per chunk so a failed chunk can be
 * rolled back); after a restart it is recomputed from the file. Sessions survive restarts, so a
 * client can resume after the edge was killed.
 *
 * Limits (upload-limits.ts): a session may not grow past `maxBlobBytes` (413, and the session is
 * dropped: that blob can never be finished here); a new session needs a free slot overall and
 * for its client (429); a session without a request for `idleTtlMs` is removed, at startup (by
 * the data file's mtime) and by a sweep every `sweepIntervalMs` while the edge runs. A session
 * with a request in progress is never swept.
 */
export class UploadSessions {
  readonly #layout: StoreLayout
  readonly #atomic: AtomicFiles
  readonly #lock = new KeyedMutex()
  readonly #hashes = new Map<string, { hash: Hash; size: number }>()
  readonly #open = new OpenSessions()
  readonly #limits: UploadLimits
  readonly #events: UploadEvents
  readonly #sweeper: NodeJS.Timeout
  #sweeping: Promise<number> | undefined
  /** What opening found on disk: sessions kept, and sessions removed (broken or idle). */
  readonly found = { kept: 0, removed: 0 }

  private constructor(layout: StoreLayout, atomic: AtomicFiles, options: UploadSessionsOptions) {
    this.#layout = layout
    this.#atomic = atomic
    this.#limits = { ...DEFAULT_UPLOAD_LIMITS, ...options.limits }
    this.#events = options.events ?? {}
    this.#sweeper = setInterval(() => void this.sweep(), this.#limits.sweepIntervalMs)
    this.#sweeper.unref()
  }

  /**
   * The sessions under `layout.uploadsDir`, as a previous process left them: broken ones (no
   * or unreadable state.json, no data file: a crash while creating or finishing them, or a
   * directory the store did not make) and idle ones are removed, the others kept so clients can
   * resume them. The idle sweep starts; `close()` stops it.
   */
  static async open(
    layout: StoreLayout,
    atomic: AtomicFiles,
    options: UploadSessionsOptions = {},
  ): Promise<UploadSessions> {
    const sessions = new UploadSessions(layout, atomic, options)
    const { live, removed, expired } = await recoverUploads(layout, sessions.#limits).catch(
      async (err: unknown) => {
        await sessions.close()
        throw err
      },
    )
    for (const found of live) sessions.#open.add(found.id, found.client, found.lastActive)
    if (expired > 0) sessions.#events.expired?.(expired)
    sessions.found.kept = live.length
    sessions.found.removed = removed
    return sessions
  }

  async start(repository: string, client = ''): Promise<UploadStatus> {
    const id = randomUUID()
    const now = Date.now()
    const refusal = this.#open.admit(id, client, now, this.#limits)
    if (refusal) {
      this.#events.refused?.(refusal)
      throw new TooManyUploadsError(refusalMessage(refusal, this.#limits))
    }
    try {
      await mkdir(this.#layout.upload(id), { recursive: true })
      await writeFile(this.#layout.uploadData(id), new Uint8Array(0), { flag: 'wx' })
      const state: UploadState = { repository, startedAt: now, client }
      await this.#atomic.write(this.#layout.uploadState(id), JSON.stringify(state))
    } catch (err) {
      await this.#remove(id)
      throw err
    }
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
      const offset = (await stat(this.#layout.uploadData(id))).size
      this.#open.touch(id, Date.now())
      return { id, repository, offset }
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
        throw new OciError(
          'SIZE_INVALID',
          `Content-Length ${chunk.declaredLength} disagrees with the chunk's ${chunk.length} bytes`,
        )
      }
      let written: number
      try {
        written = await this.#write(status, chunk)
      } catch (err) {
        if (err instanceof BlobTooLargeError) {
          await this.#remove(id)
          this.#events.refused?.('blob_too_large')
        }
        throw err
      }
      this.#open.touch(id, Date.now())
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

  /**
   * Removes the sessions that have had no request for `idleTtlMs` (at `now`); runs every
   * `sweepIntervalMs` by itself. Resolves with how many were removed.
   */
  sweep(now = Date.now()): Promise<number> {
    return (this.#sweeping ??= this.#sweepIdle(now).finally(() => (this.#sweeping = undefined)))
  }

  /** Stops the sweep (waiting for one in progress). Sessions stay on disk. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    await this.#sweeping
  }

  async #sweepIdle(now: number): Promise<number> {
    const ttl = this.#limits.idleTtlMs
    let removed = 0
    for (const id of this.#open.idle(now, ttl)) {
      // A request on the session is being served (perhaps a slow chunk): it is not idle.
      if (this.#lock.isBusy(id)) continue
      const expired = await this.#lock.run(id, async () => {
        if (!this.#open.isIdle(id, now, ttl)) return false
        await this.#remove(id)
        return true
      })
      if (expired) removed++
    }
    if (removed > 0) this.#events.expired?.(removed)
    return removed
  }

  async #write(status: UploadStatus, chunk: UploadChunk): Promise<number> {
    const max = this.#limits.maxBlobBytes
    // Refused before a byte is read when the chunk says its size (Content-Length or -Range).
    if (chunk.length !== undefined && status.offset + chunk.length > max)
      throw new BlobTooLargeError(max)
    const hash = (await this.#hashOf(status)).copy()
    const handle = await open(this.#layout.uploadData(status.id), 'r+')
    let written = 0
    try {
      for await (const part of chunk.body) {
        chunk.signal?.throwIfAborted()
        if (chunk.length !== undefined && written + part.byteLength > chunk.length) {
          throw new OciError(
            'SIZE_INVALID',
            `chunk is larger than its declared ${chunk.length} bytes`,
          )
        }
        if (status.offset + written + part.byteLength > max) throw new BlobTooLargeError(max)
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
    this.#open.remove(id)
    await rm(this.#layout.upload(id), { recursive: true, force: true })
  }
}

function refusalMessage(refusal: UploadRefusal, limits: UploadLimits): string {
  if (refusal === 'too_many_client_sessions') {
    return `this client has ${limits.maxSessionsPerClient} upload sessions open, the most it may; finish or cancel one`
  }
  return `the edge has ${limits.maxSessions} upload sessions open, the most it takes; try again later`
}
