import { OciError, parseDigest } from '../../runtime/oci/index.ts'
import { blobResponse } from '../http/blob-response.ts'
import type { RouteHandler } from './route-deps.ts'

/**
 * GET/HEAD /v2/<name>/blobs/<digest> (end-2): the blob streamed from the backend, with Range and
 * conditional requests (http/blob-response.ts).
 */
export const getBlob: RouteHandler = async (c, { repository, param }, { backend }) => {
  const digest = parseDigest(param)
  const info = await backend.statBlob(repository, digest)
  if (!info) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not in ${repository}`, { detail: { digest } })
  return blobResponse({
    request: c.req.raw,
    digest,
    size: info.size,
    read: (range) => backend.readBlob(digest, range),
  })
}

/**
 * DELETE /v2/<name>/blobs/<digest> (end-10): unlinks the blob from the repository. Its content
 * stays while other repositories link it (no garbage collection yet; see store/README.md).
 */
export const deleteBlob: RouteHandler = async (_c, { repository, param }, { backend, deletion }) => {
  if (!deletion) throw new OciError('UNSUPPORTED', 'deletion is disabled on this edge')
  const digest = parseDigest(param)
  if (!(await backend.deleteBlob(repository, digest))) {
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not in ${repository}`, { detail: { digest } })
  }
  return new Response(null, { status: 202, headers: { 'content-length': '0' } })
}
