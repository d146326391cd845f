import type { Dispatcher } from 'undici'
import type { Digest } from '../digest.ts'
import type { Descriptor } from '../schemas.ts'
import type { CredentialsOption } from './auth.ts'
import {
  mountBlob,
  pushBlob,
  type BlobSource,
  type PushBlobOptions,
  type PushedBlob,
} from './blob-upload.ts'
import { extensionRequest, type ExtensionRequest } from './extension.ts'
import { fetchRange, getBlob, headBlob, readBlob, type BlobResponse } from './blobs.ts'
import {
  deleteManifest,
  getManifest,
  headManifest,
  putManifest,
  type FetchedManifest,
  type ManifestHead,
  type CallOptions,
} from './manifests.ts'
import { addReferrerToFallbackTag, pushReferrer, referrers } from './referrers.ts'
import type { RegistryResponse } from './response.ts'
import type { RetryOptions } from './retry.ts'
import { catalog, listTags, type PageOptions } from './tags.ts'
import { createTransport } from './transport.ts'

export interface RegistryClientOptions {
  /** The registry's base URL, e.g. `http://127.0.0.1:5000`. */
  registry: string
  /** Used for Basic challenges and to obtain Bearer tokens; anonymous without. */
  credentials?: CredentialsOption
  /** An undici dispatcher to send through (not closed by `close()`); else the client makes an Agent. */
  dispatcher?: Dispatcher
  retry?: RetryOptions
  userAgent?: string
  timeouts?: { headersMs?: number; bodyMs?: number }
  /** The clock for token expiry; for tests. */
  now?: () => number
}

/**
 * A client for one OCI Distribution registry (distribution-spec v1.1). Every method takes an
 * optional `{ signal }`; aborting rejects at once with the signal's reason, also mid-backoff.
 * Failures are `OciError`s with the spec's codes (the registry's own when it sent one) and the
 * HTTP status, or a `ThawError` with code `REGISTRY_UNREACHABLE` when the network failed.
 */
export interface RegistryClient {
  readonly registry: URL
  getManifest(
    repository: string,
    reference: string,
    options?: CallOptions & { accept?: string | readonly string[] },
  ): Promise<FetchedManifest>
  headManifest(
    repository: string,
    reference: string,
    options?: CallOptions,
  ): Promise<ManifestHead | undefined>
  putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    options?: CallOptions,
  ): Promise<{ digest: Digest; subjectAccepted: boolean }>
  deleteManifest(repository: string, reference: string, options?: CallOptions): Promise<void>
  headBlob(repository: string, digest: Digest, options?: CallOptions): Promise<number | undefined>
  getBlob(
    repository: string,
    digest: Digest,
    options?: CallOptions & { range?: { start: number; end?: number } },
  ): Promise<BlobResponse>
  readBlob(
    repository: string,
    digest: Digest,
    options?: CallOptions & { size?: number; maxBytes?: number },
  ): Promise<Buffer>
  fetchRange(
    repository: string,
    digest: Digest,
    start: number,
    endInclusive: number,
    options?: CallOptions,
  ): Promise<Buffer>
  pushBlob(
    repository: string,
    source: BlobSource,
    expected: { digest: Digest; size: number },
    options?: PushBlobOptions,
  ): Promise<PushedBlob>
  mountBlob(
    repository: string,
    fromRepository: string,
    digest: Digest,
    options?: CallOptions,
  ): Promise<boolean>
  listTags(repository: string, options?: PageOptions): Promise<string[]>
  catalog(options?: PageOptions): Promise<string[]>
  referrers(
    repository: string,
    subject: Digest,
    options?: CallOptions & { artifactType?: string },
  ): Promise<Descriptor[]>
  addReferrerToFallbackTag(
    repository: string,
    subject: Digest,
    descriptor: Descriptor,
    options?: CallOptions,
  ): Promise<{ digest: Digest; changed: boolean }>
  pushReferrer(
    repository: string,
    bytes: Buffer,
    mediaType: string,
    options?: CallOptions,
  ): Promise<{ digest: Digest; subjectAccepted: boolean }>
  /** A request to a registry extension under the repository (`/v2/<name>/_thaw/...`). */
  extension(repository: string, request: ExtensionRequest): Promise<RegistryResponse>
  /** Closes the connection pool the client created. Idempotent. */
  close(): Promise<void>
}

/**
 * @example
 * const client = createRegistryClient({ registry: 'http://127.0.0.1:5000' })
 * const { bytes, mediaType } = await client.getManifest('apps/hello', 'v1')
 * await client.close()
 */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const t = createTransport(options)
  return {
    registry: t.registry,
    getManifest: (repo, ref, o) => getManifest(t, repo, ref, o),
    headManifest: (repo, ref, o) => headManifest(t, repo, ref, o),
    putManifest: (repo, ref, bytes, mediaType, o) => putManifest(t, repo, ref, bytes, mediaType, o),
    deleteManifest: (repo, ref, o) => deleteManifest(t, repo, ref, o),
    headBlob: (repo, digest, o) => headBlob(t, repo, digest, o),
    getBlob: (repo, digest, o) => getBlob(t, repo, digest, o),
    readBlob: (repo, digest, o) => readBlob(t, repo, digest, o),
    fetchRange: (repo, digest, start, end, o) => fetchRange(t, repo, digest, start, end, o),
    pushBlob: (repo, source, expected, o) => pushBlob(t, repo, source, expected, o),
    mountBlob: (repo, from, digest, o) => mountBlob(t, repo, from, digest, o),
    listTags: (repo, o) => listTags(t, repo, o),
    catalog: (o) => catalog(t, o),
    referrers: (repo, subject, o) => referrers(t, repo, subject, o),
    addReferrerToFallbackTag: (repo, subject, d, o) =>
      addReferrerToFallbackTag(t, repo, subject, d, o),
    pushReferrer: (repo, bytes, mediaType, o) => pushReferrer(t, repo, bytes, mediaType, o),
    extension: (repo, request) => extensionRequest(t, repo, request),
    close: () => t.close(),
  }
}
