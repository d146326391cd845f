import { digestHex, parseDigest, sha256Of, type Digest } from '../digest.ts'
import { OciError } from '../errors.ts'
import { MediaType } from '../media-types.ts'
import { parseRepositoryName } from '../reference.ts'
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor, type ImageIndex } from '../schemas.ts'
import { nextLink } from './link-header.ts'
import { manifestPath, putManifest, type CallOptions } from './manifests.ts'
import { expectStatus } from './response-error.ts'
import { discardBody, readBody } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Listing Referrers" (end-12a, end-12b), "Referrers Tag Schema", and
// "Pushing Manifests with Subject" (clients maintain the tag when OCI-Subject is absent).

/** The fallback tag of a subject: `sha256-<hex>` ("Referrers Tag Schema"). */
export function referrersTag(subject: Digest): string {
  return `sha256-${digestHex(parseDigest(subject))}`
}

/**
 * The referrers of `subject`: from the referrers API, or, where the registry has none (404, as
 * distribution 2.8), from the `sha256-<hex>` tag index. Filtered by `artifactType` here unless the
 * registry says it did (`OCI-Filters-Applied: artifactType`). Pages (`Link: rel="next"`) followed.
 */
export async function referrers(
  t: Transport,
  repository: string,
  subject: Digest,
  options: CallOptions & { artifactType?: string } = {},
): Promise<Descriptor[]> {
  parseRepositoryName(repository)
  const { artifactType } = options
  let url: URL | undefined = new URL(
    `/v2/${repository}/referrers/${parseDigest(subject)}`,
    t.registry,
  )
  if (artifactType) url.searchParams.set('artifactType', artifactType)
  const out: Descriptor[] = []
  for (let page = 0; url && page < 1000; page++) {
    const current: URL = url
    const result = await t.call(
      {
        method: 'GET',
        url: current,
        headers: { accept: MediaType.ociIndex },
        scopes: [repositoryScope(repository, 'pull')],
        signal: options.signal,
      },
      async (res) => {
        if (res.status === 404 || res.status === 405) {
          await discardBody(res)
          return undefined
        }
        await expectStatus(res, [200], `GET ${current.pathname}`)
        const index = parseIndex(
          await readBody(res, MAX_MANIFEST_BYTES, 'referrers index'),
          res.header('content-type'),
        )
        const filtered = /\bartifactType\b/.test(res.header('oci-filters-applied') ?? '')
        return { index, filtered, next: nextLink(res.header('link'), res.url) }
      },
    )
    if (!result) return page === 0 ? fallbackReferrers(t, repository, subject, options) : out
    out.push(
      ...(result.filtered ? result.index.manifests : only(result.index.manifests, artifactType)),
    )
    url = result.next?.href === current.href ? undefined : result.next
  }
  return out
}

async function fallbackReferrers(
  t: Transport,
  repository: string,
  subject: Digest,
  options: CallOptions & { artifactType?: string },
): Promise<Descriptor[]> {
  const current = await readFallbackIndex(t, repository, subject, options.signal)
  return only(current.index.manifests, options.artifactType)
}

/**
 * Adds `descriptor` to the `sha256-<hex>` tag index of `subject` (read, append unless already
 * there, write back), with `If-Match` when the registry gave an ETag; a 412 (someone else wrote
 * in between) starts over, a few times. Returns the index digest, and whether it changed.
 */
export async function addReferrerToFallbackTag(
  t: Transport,
  repository: string,
  subject: Digest,
  descriptor: Descriptor,
  options: CallOptions = {},
): Promise<{ digest: Digest; changed: boolean }> {
  const tag = referrersTag(subject)
  const path = manifestPath(repository, tag)
  for (let attempt = 1; ; attempt++) {
    const current = await readFallbackIndex(t, repository, subject, options.signal)
    if (current.index.manifests.some((d) => d.digest === descriptor.digest)) {
      return { digest: current.digest, changed: false }
    }
    const index: ImageIndex = {
      ...current.index,
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [...current.index.manifests, descriptor],
    }
    const bytes = Buffer.from(JSON.stringify(index))
    const headers: Record<string, string> = { 'content-type': MediaType.ociIndex }
    if (current.etag) headers['if-match'] = current.etag
    const written = await t.call(
      {
        method: 'PUT',
        url: path,
        headers,
        body: bytes,
        scopes: [repositoryScope(repository, 'pull,push')],
        signal: options.signal,
      },
      async (res) => {
        if (res.status === 412 && attempt < 5) return discardBody(res).then(() => false)
        await expectStatus(res, [201, 200], `PUT ${path}`, { 400: 'MANIFEST_INVALID' })
        await discardBody(res)
        return true
      },
    )
    if (written) return { digest: sha256Of(bytes), changed: true }
  }
}

async function readFallbackIndex(
  t: Transport,
  repository: string,
  subject: Digest,
  signal?: AbortSignal,
): Promise<{ index: ImageIndex; digest: Digest; etag?: string }> {
  const path = manifestPath(repository, referrersTag(subject))
  const empty: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }
  return t.call(
    {
      method: 'GET',
      url: path,
      headers: { accept: `${MediaType.ociIndex}, ${MediaType.dockerManifestList}` },
      scopes: [repositoryScope(repository, 'pull')],
      signal,
    },
    async (res) => {
      if (res.status === 404) {
        await discardBody(res)
        return { index: empty, digest: sha256Of(JSON.stringify(empty)) }
      }
      await expectStatus(res, [200], `GET ${path}`)
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, 'referrers tag index')
      return {
        index: parseIndex(bytes, res.header('content-type')),
        digest: sha256Of(bytes),
        etag: res.header('etag'),
      }
    },
  )
}

/**
 * The descriptor of a referrer manifest as referrers lists carry it: with its `artifactType`
 * (the manifest's, else its config's media type) and its annotations (image-spec v1.1).
 */
export function referrerDescriptor(
  bytes: Buffer,
  mediaType: string,
): Descriptor & { subject?: Descriptor } {
  const parsed = parseManifest(bytes, mediaType)
  const m = parsed.manifest
  const artifactType =
    m.artifactType ?? (parsed.kind === 'image' ? parsed.manifest.config.mediaType : undefined)
  const descriptor: Descriptor = {
    mediaType: parsed.mediaType,
    digest: sha256Of(bytes),
    size: bytes.length,
  }
  if (artifactType) descriptor.artifactType = artifactType
  if (m.annotations) descriptor.annotations = m.annotations
  return { ...descriptor, subject: m.subject }
}

/**
 * Pushes a manifest that has a `subject` (by digest), and maintains the fallback tag when the
 * registry did not process the subject (no `OCI-Subject` in its answer).
 */
export async function pushReferrer(
  t: Transport,
  repository: string,
  bytes: Buffer,
  mediaType: string,
  options: CallOptions = {},
): Promise<{ digest: Digest; subjectAccepted: boolean }> {
  const { subject, ...descriptor } = referrerDescriptor(bytes, mediaType)
  if (!subject) throw new OciError('MANIFEST_INVALID', 'a referrer manifest needs a subject')
  const pushed = await putManifest(t, repository, descriptor.digest, bytes, mediaType, options)
  if (!pushed.subjectAccepted) {
    await addReferrerToFallbackTag(t, repository, subject.digest, descriptor, options)
  }
  return pushed
}

function parseIndex(bytes: Buffer, contentType: string | undefined): ImageIndex {
  const parsed = parseManifest(bytes, contentType)
  if (parsed.kind !== 'index')
    throw new OciError('MANIFEST_INVALID', 'a referrers list must be an image index')
  return parsed.manifest
}

function only(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? descriptors.filter((d) => d.artifactType === artifactType) : descriptors
}
