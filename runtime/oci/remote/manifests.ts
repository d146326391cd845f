import { isDigest, sha256Of, type Digest } from '../digest.ts'
import { OciError } from '../errors.ts'
import { MANIFEST_ACCEPT } from '../media-types.ts'
import { parseManifestRef, parseRepositoryName } from '../reference.ts'
import { MAX_MANIFEST_BYTES } from '../schemas.ts'
import { expectStatus } from './response-error.ts'
import { discardBody, readBody, type RegistryResponse } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Pulling manifests" (end-3, end-2), "Pushing manifests" (end-7),
// "Deleting manifests" (end-9).

/** Every call that can hang takes a signal. */
export interface CallOptions {
  signal?: AbortSignal
}

export interface FetchedManifest {
  bytes: Buffer
  mediaType: string
  digest: Digest
}

export interface ManifestHead {
  digest: Digest
  mediaType: string
  size: number
}

export function manifestPath(repository: string, reference: string): string {
  parseRepositoryName(repository)
  parseManifestRef(reference)
  return `/v2/${repository}/manifests/${reference}`
}

/**
 * GETs a manifest and returns its exact bytes. The digest is always computed from the bytes:
 * when fetched by digest it must equal the one asked for, and `Docker-Content-Digest`, when
 * present, must agree (a registry that says one thing and serves another is not trusted).
 */
export async function getManifest(
  t: Transport,
  repository: string,
  reference: string,
  options: CallOptions & { accept?: string | readonly string[] } = {},
): Promise<FetchedManifest> {
  const path = manifestPath(repository, reference)
  const accept = typeof options.accept === 'string' ? options.accept : options.accept?.join(', ')
  return t.call(
    {
      method: 'GET',
      url: path,
      headers: { accept: accept ?? MANIFEST_ACCEPT },
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [200], `GET ${path}`, { 404: 'MANIFEST_UNKNOWN' })
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, 'manifest')
      const digest = sha256Of(bytes)
      checkDigest(digest, reference, res, path)
      return { bytes, mediaType: mediaTypeOf(res, bytes), digest }
    },
  )
}

/** HEADs a manifest; undefined when the registry does not have it. */
export async function headManifest(
  t: Transport,
  repository: string,
  reference: string,
  options: CallOptions = {},
): Promise<ManifestHead | undefined> {
  const path = manifestPath(repository, reference)
  const head = await t.call(
    {
      method: 'HEAD',
      url: path,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await discardBody(res)
      if (res.status === 404) return undefined
      await expectStatus(res, [200], `HEAD ${path}`, { 404: 'MANIFEST_UNKNOWN' })
      const header = res.header('docker-content-digest')
      const digest = isDigest(header) ? header : isDigest(reference) ? reference : undefined
      const size = Number(res.header('content-length'))
      return { digest, size, mediaType: contentType(res) ?? 'application/octet-stream' }
    },
  )
  if (!head) return undefined
  if (head.digest && Number.isSafeInteger(head.size)) return { ...head, digest: head.digest }
  // A HEAD without Docker-Content-Digest (allowed by the spec) leaves a tag unresolved: GET it.
  const got = await getManifest(t, repository, reference, options)
  return { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length }
}

/** PUTs a manifest. `subjectAccepted` is true when the registry answered `OCI-Subject`. */
export async function putManifest(
  t: Transport,
  repository: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
  options: CallOptions = {},
): Promise<{ digest: Digest; subjectAccepted: boolean }> {
  const path = manifestPath(repository, reference)
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new OciError('MANIFEST_INVALID', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, {
      status: 413,
    })
  }
  const digest = sha256Of(bytes)
  if (isDigest(reference) && reference !== digest) {
    throw new OciError('DIGEST_INVALID', `manifest bytes hash to ${digest}, not ${reference}`)
  }
  return t.call(
    {
      method: 'PUT',
      url: path,
      headers: { 'content-type': mediaType },
      body: bytes,
      scopes: [repositoryScope(repository, 'pull,push')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [201, 200], `PUT ${path}`, { 400: 'MANIFEST_INVALID' })
      await discardBody(res)
      checkDigest(digest, digest, res, path)
      return { digest, subjectAccepted: res.header('oci-subject') !== undefined }
    },
  )
}

export async function deleteManifest(
  t: Transport,
  repository: string,
  reference: string,
  options: CallOptions = {},
): Promise<void> {
  const path = manifestPath(repository, reference)
  await t.call(
    {
      method: 'DELETE',
      url: path,
      scopes: [repositoryScope(repository, 'delete')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [202, 200, 204], `DELETE ${path}`, { 404: 'MANIFEST_UNKNOWN' })
      await discardBody(res)
    },
  )
}

function checkDigest(actual: Digest, reference: string, res: RegistryResponse, path: string): void {
  if (isDigest(reference) && actual !== reference) {
    throw new OciError('DIGEST_INVALID', `${path}: the manifest served hashes to ${actual}`)
  }
  const claimed = res.header('docker-content-digest')
  if (isDigest(claimed) && claimed !== actual) {
    throw new OciError(
      'DIGEST_INVALID',
      `${path}: Docker-Content-Digest ${claimed} but the bytes hash to ${actual}`,
    )
  }
}

function contentType(res: RegistryResponse): string | undefined {
  return res.header('content-type')?.split(';')[0]?.trim() || undefined
}

/** Content-Type, else the document's own `mediaType` field. */
function mediaTypeOf(res: RegistryResponse, bytes: Buffer): string {
  const header = contentType(res)
  if (header && header !== 'application/octet-stream' && header !== 'application/json')
    return header
  try {
    const declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType
    if (typeof declared === 'string') return declared
  } catch {
    // not JSON: the caller's parser will say so
  }
  return header ?? 'application/octet-stream'
}
