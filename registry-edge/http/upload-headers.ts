import type { UploadStatus } from '../backend/registry-backend.ts'

/**
 * Headers every upload-session response carries (distribution-spec "Pushing blobs"): where to
 * send the next request, and the inclusive range received so far (distribution answers `0-0`
 * for an empty session, and clients expect that).
 */
export function uploadHeaders(status: UploadStatus): Record<string, string> {
  return {
    location: `/v2/${status.repository}/blobs/uploads/${status.id}`,
    range: `0-${Math.max(0, status.offset - 1)}`,
    'docker-upload-uuid': status.id,
  }
}
