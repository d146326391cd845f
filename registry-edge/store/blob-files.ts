import { readFile, rm, stat } from 'node:fs/promises'
import type { Digest } from '../../runtime/oci/index.ts'
import type { ByteRange } from '../backend/registry-backend.ts'
import { isNotFound, type AtomicFiles } from './atomic-files.ts'
import { fileRangeStream } from './file-range-stream.ts'
import type { StoreLayout } from './store-layout.ts'

/**
 * The content-addressed part of the store: `blobs/sha256/ab/<hex>`, one immutable file per
 * digest, shared by every repository. A file appears there only by rename of content that was
 * already verified against its name, so a file at a digest's path always has that digest.
 * Content is never rewritten; concurrent commits of the same digest are harmless (same bytes).
 */
export class BlobFiles {
  readonly #layout: StoreLayout
  readonly #atomic: AtomicFiles

  constructor(layout: StoreLayout, atomic: AtomicFiles) {
    this.#layout = layout
    this.#atomic = atomic
  }

  /** The blob's size, or undefined when the store has no such content. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.#layout.blob(digest))).size
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /**
   * Moves a verified, fsynced file into place under its digest. If the content is already there
   * (another push of the same blob won the race), the duplicate is dropped.
   */
  async commitFile(source: string, digest: Digest): Promise<void> {
    if ((await this.size(digest)) !== undefined) {
      await rm(source, { force: true })
      return
    }
    await this.#atomic.moveIntoPlace(source, this.#layout.blob(digest))
  }

  /** Stores small content held in memory (manifests), verified by the caller. */
  async writeBytes(digest: Digest, bytes: Uint8Array): Promise<void> {
    if ((await this.size(digest)) === bytes.byteLength) return
    await this.#atomic.write(this.#layout.blob(digest), bytes)
  }

  /** The whole content of a small blob (a manifest), or undefined when absent. */
  async readSmall(digest: Digest): Promise<Buffer | undefined> {
    try {
      return await readFile(this.#layout.blob(digest))
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  read(digest: Digest, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array> {
    return fileRangeStream(this.#layout.blob(digest), range, signal)
  }
}
