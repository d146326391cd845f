import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseManifest, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
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
import { AtomicFiles } from './atomic-files.ts'
import { BlobFiles } from './blob-files.ts'
import { recoverStore, type RecoveryReport } from './recover-store.ts'
import { RepositoryLinks } from './repository-links.ts'
import { StoreLayout } from './store-layout.ts'
import { SweepGuard } from './sweep-guard.ts'
import type { UploadEvents, UploadLimits } from './upload-limits.ts'
import { UploadSessions } from './upload-sessions.ts'

export interface DiskStoreOptions {
  /** Blob size, session counts and idle expiry of uploads (upload-limits.ts for the defaults). */
  uploads?: Partial<UploadLimits>
  /** Refused uploads and expired sessions, for metrics. */
  uploadEvents?: UploadEvents
}

/**
 * Opens (creating if needed) an on-disk store and recovers it from whatever state a previous
 * process left it in. One edge process per store directory: in-process locks serialize writers.
 *
 * @example
 *   const store = await openDiskStore('/var/lib/thaw/edge')
 *   const edge = await createRegistryEdge({ backend: store })
 */
export async function openDiskStore(
  root: string,
  options: DiskStoreOptions = {},
): Promise<DiskStore> {
  const layout = new StoreLayout(resolve(root))
  const { tmpRemoved } = await recoverStore(layout)
  const atomic = new AtomicFiles(layout)
  const uploads = await UploadSessions.open(layout, atomic, {
    limits: options.uploads,
    events: options.uploadEvents,
  })
  const recovery = {
    tmpRemoved,
    uploadsRemoved: uploads.found.removed,
    uploadsKept: uploads.found.kept,
  }
  return new DiskStore(layout, atomic, uploads, recovery)
}

/** The origin-mode backend: content-addressed blobs plus per-repository links (README.md). */
export class DiskStore implements RegistryBackend {
  readonly layout: StoreLayout
  /** What startup recovery cleaned up. */
  readonly recovery: RecoveryReport
  /** Keeps a running garbage collection off what pushes use meanwhile (store-gc.ts). */
  readonly guard = new SweepGuard()
  readonly #blobs: BlobFiles
  readonly #links: RepositoryLinks
  readonly #uploads: UploadSessions

  constructor(
    layout: StoreLayout,
    atomic: AtomicFiles,
    uploads: UploadSessions,
    recovery: RecoveryReport,
  ) {
    this.layout = layout
    this.recovery = recovery
    this.#blobs = new BlobFiles(layout, atomic)
    this.#links = new RepositoryLinks(layout, atomic)
    this.#uploads = uploads
  }

  async getManifest(repository: string, ref: ManifestLookup): Promise<StoredManifest | undefined> {
    const digest = ref.digest ?? (await this.#links.tagDigest(repository, ref.tag))
    if (!digest) return undefined
    const mediaType = await this.#links.revisionMediaType(repository, digest)
    if (!mediaType) return undefined
    const bytes = await this.#blobs.readSmall(digest)
    return bytes && { digest, mediaType, bytes }
  }

  // Order: content, revision, referrer, tag; so a crash between steps leaves no dangling link.
  async putManifest(repository: string, m: ManifestWrite): Promise<void> {
    await this.guard.touch(m.digest)
    await this.#blobs.writeBytes(m.digest, m.bytes)
    await this.#links.linkRevision(repository, m.digest, m.mediaType)
    if (m.referrer)
      await this.#links.linkReferrer(repository, m.referrer.subject, m.referrer.descriptor)
    if (m.tag !== undefined) await this.#links.linkTag(repository, m.tag, m.digest)
  }

  // The reverse order: tags, referrer entry, revision. The content stays (other repositories
  // may link it; unreferenced content is left for a garbage collector, as in distribution).
  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    const stored = await this.getManifest(repository, { digest })
    if (!stored) return false
    for (const tag of await this.#links.tagsOf(repository, digest)) {
      await this.#links.unlinkTag(repository, tag)
    }
    const subject = subjectOf(stored)
    if (subject) await this.#links.unlinkReferrer(repository, subject, digest)
    return this.#links.unlinkRevision(repository, digest)
  }

  deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.#links.unlinkTag(repository, tag)
  }

  listTags(repository: string): Promise<string[] | undefined> {
    return this.#links.listTags(repository)
  }

  listRepositories(): Promise<string[]> {
    return this.#links.listRepositories()
  }

  listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    return this.#links.listReferrers(repository, subject)
  }

  // A HEAD (also the check of a manifest's references) makes the blob live for a running
  // collection: the client is about to link it.
  async statBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    await this.guard.touch(digest)
    const [linked, size] = await Promise.all([
      this.#links.hasLayer(repository, digest),
      this.#blobs.size(digest),
    ])
    return linked && size !== undefined ? { digest, size } : undefined
  }

  readBlob(digest: Digest, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array> {
    return this.#blobs.read(digest, range, signal)
  }

  deleteBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.#links.unlinkLayer(repository, digest)
  }

  async mountBlob(repository: string, from: string, digest: Digest): Promise<boolean> {
    if (!(await this.statBlob(from, digest))) return false
    await this.#links.linkLayer(repository, digest)
    return true
  }

  startUpload(repository: string, client?: string): Promise<UploadStatus> {
    return this.#uploads.start(repository, client)
  }

  getUpload(repository: string, id: string): Promise<UploadStatus> {
    return this.#uploads.status(repository, id)
  }

  appendUpload(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus> {
    return this.#uploads.append(repository, id, chunk)
  }

  async finishUpload(repository: string, id: string, digest: Digest): Promise<BlobInfo> {
    const size = await this.#uploads.finish(repository, id, digest, async (file) => {
      await this.guard.touch(digest)
      await this.#blobs.commitFile(file, digest)
      await this.#links.linkLayer(repository, digest)
    })
    return { digest, size }
  }

  cancelUpload(repository: string, id: string): Promise<void> {
    return this.#uploads.cancel(repository, id)
  }

  /** Stops the idle-session sweep. Nothing else is held open between requests. */
  close(): Promise<void> {
    return this.#uploads.close()
  }

  /** Removes upload sessions idle past their TTL now, instead of at the next sweep. */
  sweepUploads(now?: number): Promise<number> {
    return this.#uploads.sweep(now)
  }

  /** Removes the whole store; for tests. */
  async destroy(): Promise<void> {
    await rm(this.layout.root, { recursive: true, force: true })
  }
}

/** The digest of a stored manifest's `subject`, if it has one and parses. */
export function subjectOf(stored: StoredManifest): Digest | undefined {
  try {
    return parseManifest(stored.bytes, stored.mediaType).manifest.subject?.digest
  } catch {
    return undefined
  }
}
