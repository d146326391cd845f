import type { Digest } from '../../runtime/oci/index.ts'
import type { ByteRange } from '../backend/registry-backend.ts'
import { etagOf, evaluatePreconditions, rangeApplies } from './conditional.ts'
import { RangeInvalidError } from './http-errors.ts'
import { multipartByteranges } from './multipart-byteranges.ts'
import { contentRange, parseRangeHeader } from './range-header.ts'

export interface BlobResponseInput {
  request: Request
  digest: Digest
  size: number
  /** Opens bytes start..end (inclusive) of the blob; called only when a body is sent. */
  read: (range: ByteRange) => ReadableStream<Uint8Array>
  contentType?: string
}

/**
 * The answer to GET or HEAD of a blob, with Range (RFC 9110 §14) and conditional requests (§13).
 * Distribution-spec v1.1.1 "Pulling blobs": a registry SHOULD support Range per RFC 9110.
 *
 * - `Docker-Content-Digest` is always the whole blob's digest, also on 206: clients must not check
 *   a partial body against it.
 * - HEAD answers exactly what GET would (status, Content-Length, Content-Range) without a body.
 * - The body streams from `read`; nothing is buffered here.
 */
export function blobResponse(input: BlobResponseInput): Response {
  const { request, digest, size } = input
  const etag = etagOf(digest)
  const headers = new Headers({
    'docker-content-digest': digest,
    etag,
    'cache-control': 'max-age=31536000',
  })
  const precondition = evaluatePreconditions(request.headers, etag)
  if (precondition === 'not-modified') return new Response(null, { status: 304, headers })
  if (precondition === 'failed') return new Response(null, { status: 412, headers })

  headers.set('accept-ranges', 'bytes')
  const contentType = input.contentType ?? 'application/octet-stream'
  const head = request.method === 'HEAD'
  const rangeHeader = rangeApplies(request.headers, etag) ? request.headers.get('range') : null
  const wanted = parseRangeHeader(rangeHeader, size)

  if (wanted.kind === 'unsatisfiable') {
    throw new RangeInvalidError(wanted.reason, {
      'content-range': `bytes */${size}`,
      'docker-content-digest': digest,
      etag,
    })
  }
  if (wanted.kind === 'full') {
    headers.set('content-type', contentType)
    headers.set('content-length', String(size))
    const body = head || size === 0 ? null : input.read({ start: 0, end: size - 1 })
    return new Response(body, { status: 200, headers })
  }
  const [first] = wanted.ranges
  if (wanted.ranges.length === 1 && first) {
    headers.set('content-type', contentType)
    headers.set('content-range', contentRange(first, size))
    headers.set('content-length', String(first.end - first.start + 1))
    return new Response(head ? null : input.read(first), { status: 206, headers })
  }
  const multipart = multipartByteranges(wanted.ranges, size, contentType, input.read)
  headers.set('content-type', multipart.contentType)
  headers.set('content-length', String(multipart.length))
  // The multipart body is lazy: a HEAD drops it without having opened any range.
  return new Response(head ? null : multipart.body, { status: 206, headers })
}

