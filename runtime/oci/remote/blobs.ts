import type { Readable } from 'node:stream'
import { VerifyingStream, parseDigest, type Digest } from '../digest.ts'
import { OciError, isOciError } from '../errors.ts'
import { parseRepositoryName } from '../reference.ts'
import { parseContentRange } from './content-range.ts'
import type { CallOptions } from './manifests.ts'
import { expectStatus } from './response-error.ts'
import { destroyBody, discardBody, readBody, type RegistryResponse } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Pulling blobs" (end-2, end-10); Range per v1.1.1 and RFC 9110 14.

export interface BlobResponse {
  /** 200 for the whole blob, 206 for a range. */
  status: 200 | 206
  /** The body: read it to the end or destroy it, or the connection is never reused. */
  body: Readable
  /** The whole blob's size when the registry said (a 200's Content-Length, a 206's range total). */
  size: number | undefined
  /** The blob bytes the body holds (inclusive), when known. */
  range: { start: number; end: number } | undefined
}

export function blobPath(repository: string, digest: Digest): string {
  parseRepositoryName(repository)
  return `/v2/${repository}/blobs/${parseDigest(digest)}`
}

/** HEADs a blob: its size, or undefined when the registry does not have it. */
export async function headBlob(
  t: Transport,
  repository: string,
  digest: Digest,
  options: CallOptions = {},
): Promise<number | undefined> {
  const path = blobPath(repository, digest)
  return t.call(
    {
      method: 'HEAD',
      url: path,
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await discardBody(res)
      if (res.status === 404) return undefined
      await expectStatus(res, [200], `HEAD ${path}`, { 404: 'BLOB_UNKNOWN' })
      const size = Number(res.header('content-length'))
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new OciError('SIZE_INVALID', `HEAD ${path}: no usable Content-Length`, {
          status: 502,
        })
      }
      return size
    },
  )
}

/**
 * GETs a blob, or a range of it (`end` inclusive, open-ended without it), and returns the
 * response with its body unread. Registries may ignore Range and answer 200 with everything.
 * The body is not verified here: whole blobs are verified by `readBlob`, ranges by the caller.
 */
export async function getBlob(
  t: Transport,
  repository: string,
  digest: Digest,
  options: CallOptions & { range?: { start: number; end?: number } } = {},
): Promise<BlobResponse> {
  const path = blobPath(repository, digest)
  const { range } = options
  const headers: Record<string, string> = {}
  if (range) {
    checkRange(range.start, range.end ?? range.start)
    headers.range = `bytes=${range.start}-${range.end ?? ''}`
  }
  return t.call(
    {
      method: 'GET',
      url: path,
      headers,
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [200, 206], `GET ${path}`, { 404: 'BLOB_UNKNOWN' })
      return toBlobResponse(res, path)
    },
  )
}

function toBlobResponse(res: RegistryResponse, path: string): BlobResponse {
  const length = Number(res.header('content-length'))
  const contentLength =
    res.header('content-length') && Number.isSafeInteger(length) ? length : undefined
  if (res.status === 200) {
    const range = contentLength === undefined ? undefined : { start: 0, end: contentLength - 1 }
    return { status: 200, body: res.body, size: contentLength, range }
  }
  const cr = parseContentRange(res.header('content-range'))
  if (!cr) {
    destroyBody(res)
    throw new OciError('RANGE_INVALID', `GET ${path}: 206 without a usable Content-Range`, {
      status: 502,
    })
  }
  return { status: 206, body: res.body, size: cr.size, range: { start: cr.start, end: cr.end } }
}

/** Reads a whole blob into memory, verified against its digest (and `size`, if given). */
export async function readBlob(
  t: Transport,
  repository: string,
  digest: Digest,
  options: CallOptions & { size?: number; maxBytes?: number } = {},
): Promise<Buffer> {
  const path = blobPath(repository, digest)
  const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER
  return t.call(
    {
      method: 'GET',
      url: path,
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [200], `GET ${path}`, { 404: 'BLOB_UNKNOWN' })
      const verifier = new VerifyingStream({ digest, size: options.size })
      res.body.on('error', (err) => verifier.destroy(err))
      const verified: RegistryResponse = {
        ...res,
        header: res.header,
        body: res.body.pipe(verifier),
      }
      try {
        return await readBody(verified, maxBytes, `blob ${digest}`)
      } catch (err) {
        // Wrong bytes from the registry are its fault, not the caller's: report them as a 502.
        if (isOciError(err) && verifier.errored === err) {
          throw new OciError(err.code, `GET ${path}: ${err.message}`, { status: 502, cause: err })
        }
        throw err
      }
    },
  )
}

/**
 * Reads bytes `start`..`end` (inclusive) of a blob. A 206 must carry a Content-Range starting at
 * `start` and ending at `end`, or earlier only where the blob ends (RFC 9110 14.1.1 allows a
 * server to shorten a range past the end). A 200 (a registry or proxy that ignores Range, such as
 * distribution's pull-through cache on a miss) is accepted by reading up to `end` and slicing,
 * then dropping the connection rather than downloading the rest. The bytes are not verified:
 * a range has no digest of its own here; callers check it against theirs.
 */
export async function fetchRange(
  t: Transport,
  repository: string,
  digest: Digest,
  start: number,
  end: number,
  options: CallOptions = {},
): Promise<Buffer> {
  const path = blobPath(repository, digest)
  checkRange(start, end)
  return t.call(
    {
      method: 'GET',
      url: path,
      headers: { range: `bytes=${start}-${end}` },
      scopes: [repositoryScope(repository, 'pull')],
      signal: options.signal,
    },
    async (res) => {
      await expectStatus(res, [200, 206], `GET ${path} bytes=${start}-${end}`, {
        404: 'BLOB_UNKNOWN',
      })
      if (res.status === 200) return sliceFullBody(res, start, end, path)
      const cr = parseContentRange(res.header('content-range'))
      const clamped = cr?.size !== undefined && cr.end === cr.size - 1 && cr.end < end
      if (!cr || cr.start !== start || (cr.end !== end && !clamped)) {
        throw new OciError(
          'RANGE_INVALID',
          `GET ${path}: asked for bytes ${start}-${end}, got Content-Range ${res.header('content-range')}`,
          { status: 502 },
        )
      }
      const want = cr.end - start + 1
      const bytes = await readBody(res, want, `range of ${digest}`)
      if (bytes.length !== want) {
        throw new OciError(
          'SIZE_INVALID',
          `GET ${path}: range body is ${bytes.length} bytes, expected ${want}`,
          { status: 502 },
        )
      }
      return bytes
    },
  )
}

async function sliceFullBody(
  res: RegistryResponse,
  start: number,
  end: number,
  path: string,
): Promise<Buffer> {
  const parts: Buffer[] = []
  let offset = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    const from = Math.max(start - offset, 0)
    const to = Math.min(end + 1 - offset, chunk.length)
    if (to > from) parts.push(chunk.subarray(from, to))
    offset += chunk.length
    if (offset > end) break // leaving the loop destroys the body: no need for the rest
  }
  if (offset <= start) {
    throw new OciError(
      'RANGE_INVALID',
      `GET ${path}: blob is ${offset} bytes, range starts at ${start}`,
    )
  }
  return Buffer.concat(parts)
}

function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new OciError('RANGE_INVALID', `invalid byte range ${start}-${end}`)
  }
}
