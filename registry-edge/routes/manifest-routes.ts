import {
  MAX_MANIFEST_BYTES,
  OciError,
  isTag,
  parseManifest,
  parseManifestRef,
  sha256Of,
} from '../../runtime/oci/index.ts'
import { etagOf, evaluatePreconditions } from '../http/conditional.ts'
import { readLimitedBody } from '../http/request-body.ts'
import { acceptsManifest, checkReferences, referrerOf } from './manifest-checks.ts'
import type { RouteHandler } from './route-deps.ts'

/**
 * GET/HEAD /v2/<name>/manifests/<reference> (end-3): the stored bytes, exactly as pushed. A
 * reference that is no valid tag (`.INVALID`) names a manifest that cannot exist: 404
 * MANIFEST_UNKNOWN, as the spec's conformance suite expects of a pull, where a PUT under it is
 * 400 TAG_INVALID. A malformed digest stays 400 DIGEST_INVALID.
 */
export const getManifest: RouteHandler = async (c, { repository, param }, { backend }) => {
  if (!param.includes(':') && !isTag(param)) {
    throw new OciError('MANIFEST_UNKNOWN', `manifest ${JSON.stringify(param.slice(0, 200))} is not in ${repository}`)
  }
  const ref = parseManifestRef(param)
  const stored = await backend.getManifest(repository, ref)
  if (!stored) throw new OciError('MANIFEST_UNKNOWN', `manifest ${param} is not in ${repository}`)
  if (ref.tag !== undefined && !acceptsManifest(c.req.header('accept'), stored.mediaType)) {
    throw new OciError('MANIFEST_UNKNOWN', `manifest ${param} is ${stored.mediaType}, which the Accept header excludes`)
  }
  const etag = etagOf(stored.digest)
  const headers = {
    'content-type': stored.mediaType,
    'docker-content-digest': stored.digest,
    etag,
  }
  const precondition = evaluatePreconditions(c.req.raw.headers, etag)
  if (precondition === 'not-modified') return new Response(null, { status: 304, headers })
  if (precondition === 'failed') return new Response(null, { status: 412, headers })
  const length = { 'content-length': String(stored.bytes.byteLength) }
  const body = c.req.method === 'HEAD' ? null : stored.bytes
  return new Response(body, { status: 200, headers: { ...headers, ...length } })
}

/**
 * PUT /v2/<name>/manifests/<reference> (end-7). Checked before anything is stored: size (413
 * past 4 MiB), JSON and schema, media type against Content-Type, digest against a digest
 * reference, and that every referenced blob or child manifest is in the repository. Answers 201
 * with `OCI-Subject` when the manifest has a subject (the spec's signal that this registry
 * maintains referrers itself, so clients skip the fallback tag).
 */
export const putManifest: RouteHandler = async (c, { repository, param }, deps) => {
  const ref = parseManifestRef(param)
  const bytes = await readLimitedBody(c, MAX_MANIFEST_BYTES, () =>
    new OciError('MANIFEST_INVALID', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, { status: 413 }),
  )
  const parsed = parseManifest(bytes, c.req.header('content-type'))
  const digest = sha256Of(bytes)
  if (ref.digest !== undefined && ref.digest !== digest) {
    throw new OciError('DIGEST_INVALID', `manifest digest is ${digest}, not ${ref.digest}`)
  }
  await checkReferences(deps.backend, repository, parsed)
  const referrer = referrerOf(parsed, digest, bytes.byteLength)
  const { mediaType } = parsed
  await deps.backend.putManifest(repository, { digest, mediaType, bytes, tag: ref.tag, referrer })
  const subject = parsed.manifest.subject
  deps.events.emit({ repository, digest, mediaType, bytes, tag: ref.tag, subject })
  const headers: Record<string, string> = {
    location: `/v2/${repository}/manifests/${digest}`,
    'docker-content-digest': digest,
    'content-length': '0',
  }
  if (subject) headers['oci-subject'] = subject.digest
  return new Response(null, { status: 201, headers })
}

/**
 * DELETE /v2/<name>/manifests/<reference> (end-9): by digest removes the manifest and every tag
 * on it; by tag removes only the tag (distribution-spec v1.1 "Deleting tags").
 */
export const deleteManifest: RouteHandler = async (_c, { repository, param }, { backend, deletion }) => {
  if (!deletion) throw new OciError('UNSUPPORTED', 'deletion is disabled on this edge')
  const ref = parseManifestRef(param)
  const deleted =
    ref.digest !== undefined
      ? await backend.deleteManifest(repository, ref.digest)
      : await backend.deleteTag(repository, ref.tag)
  if (!deleted) throw new OciError('MANIFEST_UNKNOWN', `manifest ${param} is not in ${repository}`)
  return new Response(null, { status: 202, headers: { 'content-length': '0' } })
}
