import type { Context } from 'hono'
import { OciError, isRepositoryName, parseDigest, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend, UploadChunk, UploadStatus } from '../backend/registry-backend.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { clientAddress } from '../http/client-address.ts'
import { RangeInvalidError } from '../http/http-errors.ts'
import { contentLength, hasBody, requestBody } from '../http/request-body.ts'
import { uploadHeaders } from '../http/upload-headers.ts'
import type { RouteHandler } from './route-deps.ts'

/**
 * POST /v2/<name>/blobs/uploads/ (end-4a, end-4b, end-11):
 * - `?mount=<digest>&from=<repo>`: cross-repository mount, 201 if the blob is in `from` and the
 *   caller may pull it; otherwise (spec) an ordinary upload session is started instead (202);
 * - `?digest=<digest>` with a body: a monolithic upload in one request (201);
 * - nothing: a new session (202, `Location` of the session).
 */
export const startUpload: RouteHandler = async (c, { repository }, { backend }) => {
  const query = new URL(c.req.url).searchParams
  const mount = query.get('mount')
  const from = query.get('from')
  if (mount !== null && from !== null && isRepositoryName(from)) {
    const digest = parseDigest(mount)
    if (
      c.get('principal').can(from, 'pull') &&
      (await backend.mountBlob(repository, from, digest))
    ) {
      return blobCreated(repository, digest)
    }
  }
  const digestParam = query.get('digest')
  const digest = digestParam === null ? undefined : parseDigest(digestParam)
  const status = await backend.startUpload(repository, uploadClient(c))
  if (digest === undefined) return accepted(status, 202)
  try {
    return await finishWith(c, backend, status, digest, () => chunkOf(c))
  } catch (err) {
    // The client never learnt this session's Location: leave nothing of it behind.
    await backend.cancelUpload(repository, status.id).catch(() => {})
    throw err
  }
}

/** PATCH /v2/<name>/blobs/uploads/<id> (end-5): one chunk, in order (Content-Range) or streamed. */
export const patchUpload: RouteHandler = async (c, { repository, param }, { backend }) => {
  const status = await appendChecked(backend, repository, param, () => chunkOf(c))
  return accepted(status, 202)
}

/** PUT /v2/<name>/blobs/uploads/<id>?digest=<digest> (end-6): optional last chunk, then verify. */
export const finishUpload: RouteHandler = async (c, { repository, param }, { backend }) => {
  const digestParam = new URL(c.req.url).searchParams.get('digest')
  if (digestParam === null)
    throw new OciError('DIGEST_INVALID', 'the digest query parameter is required')
  const digest = parseDigest(digestParam)
  const status = await backend.getUpload(repository, param)
  return finishWith(c, backend, status, digest, hasBody(c) ? () => chunkOf(c) : undefined)
}

/** GET /v2/<name>/blobs/uploads/<id> (end-13): how much of the session has arrived. */
export const uploadStatus: RouteHandler = async (_c, { repository, param }, { backend }) => {
  return accepted(await backend.getUpload(repository, param), 204)
}

/** DELETE /v2/<name>/blobs/uploads/<id>: abandons the session and its bytes. */
export const cancelUpload: RouteHandler = async (_c, { repository, param }, { backend }) => {
  await backend.cancelUpload(repository, param)
  return new Response(null, { status: 204, headers: { 'content-length': '0' } })
}

async function finishWith(
  c: Context<EdgeEnv>,
  backend: RegistryBackend,
  status: UploadStatus,
  digest: Digest,
  chunk: (() => UploadChunk) | undefined,
): Promise<Response> {
  if (chunk) await appendChecked(backend, status.repository, status.id, chunk)
  await backend.finishUpload(status.repository, status.id, digest)
  return blobCreated(status.repository, digest)
}

/** Appends a chunk; a 416 gets the session's Location and Range so the client can resume. */
async function appendChecked(
  backend: RegistryBackend,
  repository: string,
  id: string,
  chunk: () => UploadChunk,
): Promise<UploadStatus> {
  try {
    return await backend.appendUpload(repository, id, chunk())
  } catch (err) {
    if (!(err instanceof RangeInvalidError)) throw err
    const status = await backend.getUpload(repository, id)
    throw new RangeInvalidError(err.message, uploadHeaders(status), err.code)
  }
}

/**
 * The chunk a request carries. `Content-Range: <start>-<end>` says where it goes; a
 * Content-Length too must agree with it (checked by the backend after the order, as distribution
 * does). The spec says the range "MUST match `^[0-9]+-[0-9]+$`" and that a chunk the registry
 * cannot place answers 416 (distribution-spec "Pushing a blob in chunks"): anything else, a
 * `bytes ` prefix or a `/total` suffix included, is 416 BLOB_UPLOAD_INVALID before a byte is
 * read, never guessed at.
 */
function chunkOf(c: Context<EdgeEnv>): UploadChunk {
  const length = contentLength(c)
  const range = c.req.header('content-range')
  if (range === undefined) return { body: requestBody(c), length }
  const m = /^(\d{1,15})-(\d{1,15})$/.exec(range)
  if (!m) {
    const shown = JSON.stringify(range.slice(0, 60))
    throw new RangeInvalidError(
      `malformed Content-Range ${shown}: must be <start>-<end>`,
      {},
      'BLOB_UPLOAD_INVALID',
    )
  }
  const start = Number(m[1])
  const end = Number(m[2])
  if (end < start) throw new RangeInvalidError(`Content-Range ${range} ends before it starts`)
  return { body: requestBody(c), start, length: end - start + 1, declaredLength: length }
}

/** Whom a session counts against: the signed-in user, else the client's address. */
function uploadClient(c: Context<EdgeEnv>): string {
  const { subject } = c.get('principal')
  return subject.kind === 'user' ? `user:${subject.name}` : `address:${clientAddress(c)}`
}

function accepted(status: UploadStatus, code: 202 | 204): Response {
  return new Response(null, {
    status: code,
    headers: { ...uploadHeaders(status), 'content-length': '0' },
  })
}

function blobCreated(repository: string, digest: Digest): Response {
  return new Response(null, {
    status: 201,
    headers: {
      location: `/v2/${repository}/blobs/${digest}`,
      'docker-content-digest': digest,
      'content-length': '0',
    },
  })
}
