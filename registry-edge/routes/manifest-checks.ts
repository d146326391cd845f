import {
  OciError,
  isManifestMediaType,
  type Descriptor,
  type Digest,
  type ParsedManifest,
} from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'

/**
 * Checks that everything a pushed manifest references is already in the repository, as
 * distribution does (distribution-spec "Pushing Manifests": a registry MAY reject a manifest
 * whose blobs are unknown, with MANIFEST_BLOB_UNKNOWN). An image needs its config and layers, an
 * index its child manifests. The `subject` is not checked: the spec says a registry MUST accept a
 * manifest whose subject does not exist yet. A descriptor whose size disagrees with the stored
 * content is MANIFEST_INVALID: clients would fail verifying it later.
 */
export async function checkReferences(
  backend: RegistryBackend,
  repository: string,
  parsed: ParsedManifest,
): Promise<void> {
  const problems = await Promise.all(
    parsed.kind === 'image'
      ? [parsed.manifest.config, ...parsed.manifest.layers].map((d) => blobProblem(backend, repository, d))
      : parsed.manifest.manifests.map((d) => childProblem(backend, repository, d)),
  )
  const problem = problems.find((p) => p !== undefined)
  if (problem) throw problem
}

async function blobProblem(backend: RegistryBackend, repository: string, d: Descriptor) {
  const info = await backend.statBlob(repository, d.digest)
  if (!info) return unknown(d.digest, 'blob')
  if (info.size !== d.size) return sizeMismatch(d, info.size)
  return undefined
}

async function childProblem(backend: RegistryBackend, repository: string, d: Descriptor) {
  const child = await backend.getManifest(repository, { digest: d.digest })
  if (!child) return unknown(d.digest, 'manifest')
  if (child.bytes.byteLength !== d.size) return sizeMismatch(d, child.bytes.byteLength)
  return undefined
}

function unknown(digest: Digest, what: string): OciError {
  return new OciError('MANIFEST_BLOB_UNKNOWN', `the manifest references ${what} ${digest}, which is not in this repository`, {
    detail: { digest },
  })
}

function sizeMismatch(d: Descriptor, actual: number): OciError {
  return new OciError('MANIFEST_INVALID', `descriptor of ${d.digest} says ${d.size} bytes, the content has ${actual}`, {
    detail: { digest: d.digest, size: d.size, actual },
  })
}

/**
 * The descriptor the referrers API lists for a manifest with a `subject` (distribution-spec
 * "Listing Referrers"): its media type, digest and size, `artifactType` (the manifest's own, else
 * an image's config media type), and the manifest's annotations.
 */
export function referrerOf(
  parsed: ParsedManifest,
  digest: Digest,
  size: number,
): { subject: Digest; descriptor: Descriptor } | undefined {
  const { subject, annotations } = parsed.manifest
  if (!subject) return undefined
  const artifactType =
    parsed.manifest.artifactType ?? (parsed.kind === 'image' ? parsed.manifest.config.mediaType : undefined)
  const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size }
  if (artifactType) descriptor.artifactType = artifactType
  if (annotations && Object.keys(annotations).length > 0) descriptor.annotations = annotations
  return { subject: subject.digest, descriptor }
}

/**
 * Content negotiation for GET by tag (distribution-spec "Pulling manifests": clients list what
 * they accept). A client that names manifest media types but not this one, and no wildcard, gets
 * MANIFEST_UNKNOWN, as from distribution. A request by digest gets the bytes it pinned.
 */
export function acceptsManifest(accept: string | undefined, mediaType: string): boolean {
  if (!accept) return true
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase())
  if (!types.some(isManifestMediaType)) return true
  return types.some((t) => t === mediaType || t === '*/*' || t === 'application/*')
}
