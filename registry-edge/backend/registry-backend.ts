import type { Descriptor, Digest } from '../../runtime/oci/index.ts'

/**
 * What the edge's routes need from wherever images live. The on-disk store (origin mode,
 * `store/disk-store.ts`) implements it; a proxy backend (an upstream registry plus a chunk cache)
 * implements the same interface, so routes, auth and range handling do not change.
 *
 * Contract, for every implementation:
 * - Names, tags and digests arrive already validated (routes parse them with runtime/oci).
 * - "Unknown" is `undefined`/`false`, never an exception; exceptions are `OciError`s with spec codes
 *   (BLOB_UPLOAD_UNKNOWN, DIGEST_INVALID, SIZE_INVALID, ...) or system failures.
 * - Nothing becomes visible before it is verified: `finishUpload` checks the digest, `putManifest`
 *   gets bytes whose digest the route computed and whose references the route checked.
 * - Byte ranges are inclusive (`end` is the last byte), as in HTTP.
 */
export interface RegistryBackend {
  // Manifests. A manifest is identified by a tag or by the digest of its exact bytes.
  getManifest(repository: string, ref: ManifestLookup): Promise<StoredManifest | undefined>
  putManifest(repository: string, manifest: ManifestWrite): Promise<void>
  /** Removes the manifest, every tag pointing at it and its referrers entry. */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>
  deleteTag(repository: string, tag: string): Promise<boolean>
  /** Sorted tags, or undefined when the repository does not exist. */
  listTags(repository: string): Promise<string[] | undefined>
  /** Every repository with at least one manifest ever pushed, sorted. */
  listRepositories(): Promise<string[]>
  /** Descriptors of the manifests whose `subject` is `subject`, sorted by digest. */
  listReferrers(repository: string, subject: Digest): Promise<Descriptor[]>

  // Blobs, scoped to a repository: a blob pushed to one repository is unknown in another until
  // pushed or mounted there (so pull grants on one repository never leak another's content).
  statBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined>
  /** Bytes `start..end` of a blob whose size the caller got from `statBlob`. */
  readBlob(digest: Digest, range: ByteRange, signal?: AbortSignal): ReadableStream<Uint8Array>
  deleteBlob(repository: string, digest: Digest): Promise<boolean>
  /** Links a blob from `from` into `repository`; false when `from` does not have it. */
  mountBlob(repository: string, from: string, digest: Digest): Promise<boolean>

  // Uploads (distribution-spec "Pushing blobs"): a session accumulates bytes in order, and
  // `finishUpload` verifies them before the blob becomes visible.
  /**
   * Opens a session for `client` (whom per-client limits count: a user name or an address).
   * Throws TOOMANYREQUESTS (429) when the edge or the client has as many open as allowed.
   */
  startUpload(repository: string, client?: string): Promise<UploadStatus>
  /** Throws BLOB_UPLOAD_UNKNOWN for an unknown, finished or cancelled session. */
  getUpload(repository: string, id: string): Promise<UploadStatus>
  /**
   * Appends a chunk. Checked in distribution's order: `start`, when given, must equal the current
   * offset (else 416 RANGE_INVALID); then `declaredLength` must equal `length`, and the body must
   * have `length` bytes (else SIZE_INVALID). A chunk that fails midway leaves the session as it
   * was before the chunk, except one that takes the blob past the size limit: 413 SIZE_INVALID,
   * and the session is gone.
   */
  appendUpload(repository: string, id: string, chunk: UploadChunk): Promise<UploadStatus>
  /** Verifies the session's bytes against `digest`, makes the blob visible, ends the session. */
  finishUpload(repository: string, id: string, digest: Digest): Promise<BlobInfo>
  cancelUpload(repository: string, id: string): Promise<void>

  /** Idempotent. */
  close(): Promise<void>
}

export type ManifestLookup = { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined }

export interface StoredManifest {
  digest: Digest
  mediaType: string
  bytes: Uint8Array
}

export interface ManifestWrite extends StoredManifest {
  tag?: string
  /** Set when the manifest has a `subject`: the descriptor the referrers API lists for it. */
  referrer?: { subject: Digest; descriptor: Descriptor }
}

export interface BlobInfo {
  digest: Digest
  size: number
}

export interface ByteRange {
  start: number
  /** Inclusive. */
  end: number
}

export interface UploadStatus {
  id: string
  repository: string
  /** Bytes received so far. */
  offset: number
}

export interface UploadChunk {
  body: AsyncIterable<Uint8Array>
  /** Where the chunk goes (from Content-Range); must be the session's offset. */
  start?: number
  /** The chunk's size from Content-Range, else from Content-Length. */
  length?: number
  /** Content-Length when Content-Range also gave a size: the two must agree (SIZE_INVALID). */
  declaredLength?: number
  signal?: AbortSignal
}
