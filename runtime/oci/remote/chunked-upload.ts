import type { Readable } from 'node:stream'
import { Hasher, type Digest } from '../digest.ts'
import { OciError, isOciError } from '../errors.ts'
import type { BlobSource, PushBlobOptions } from './blob-upload.ts'
import { expectStatus } from './response-error.ts'
import { discardBody } from './response.ts'
import { abortReason, backoffDelay, isRetryable, sleep } from './retry.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'
import { OCTET, completeUpload, nextLocation, type UploadSession } from './upload-session.ts'

// distribution-spec v1.1 "Pushing a blob in chunks": PATCH with `Content-Range: <start>-<end>`
// (inclusive, no unit) and Content-Length; each 202 gives the Location of the next request and
// `Range: 0-<last>`; OCI-Chunk-Min-Length sets the smallest chunk but the last (end-5).

export async function putChunks(
  t: Transport,
  repository: string,
  session: UploadSession,
  source: BlobSource,
  digest: Digest,
  size: number,
  options: PushBlobOptions,
): Promise<void> {
  const chunkSize = Math.max(options.chunkSize ?? 8 * 1024 * 1024, session.minChunk, 1)
  const hasher = new Hasher()
  let location = session.location
  const stream = Buffer.isBuffer(source) ? undefined : await source()
  try {
    const pieces = stream ? chunksOf(stream, chunkSize) : slices(source as Buffer, chunkSize)
    for await (const piece of pieces) {
      if (hasher.size + piece.length > size) break
      location = await patchResuming(t, repository, location, piece, hasher.size, options.signal)
      hasher.update(piece)
      options.onProgress?.(hasher.size)
    }
  } finally {
    stream?.destroy()
  }
  if (hasher.size !== size || hasher.digest() !== digest) {
    throw new OciError(
      'DIGEST_INVALID',
      `the stream given for ${digest} (${size} bytes) does not match it`,
    )
  }
  await completeUpload(t, repository, location, digest, undefined, 0, options.signal)
}

/**
 * PATCHes a chunk. A PATCH is not repeated blindly (it appends), so after a failure that may
 * have delivered part of the chunk (dropped connection, 5xx, 416) this asks the registry how much
 * it holds (GET on the upload URL, distribution-spec end-13: 204 with `Range: 0-<last>`) and
 * sends the rest of the chunk from there.
 */
async function patchResuming(
  t: Transport,
  repository: string,
  location: URL,
  chunk: Buffer,
  offset: number,
  signal?: AbortSignal,
): Promise<URL> {
  for (let tries = 1; ; tries++) {
    try {
      return await patchChunk(t, repository, location, chunk, offset, signal)
    } catch (err) {
      const resumable = isRetryable(err, true) || (isOciError(err) && err.status === 416)
      if (signal?.aborted || !resumable || tries >= t.retry.attempts) throw err
      await sleep(backoffDelay(t.retry, tries), signal)
      // A registry that cannot tell (or refuses the old URL) leaves the restart to pushBlob.
      const status = await uploadStatus(t, repository, location, signal).catch(() => undefined)
      if (signal?.aborted) throw abortReason(signal)
      if (!status) throw err
      const held = status.size - offset // bytes of this chunk the registry has
      if (held < 0 || held > chunk.length) throw err
      location = status.location
      if (held === chunk.length) return location
      chunk = chunk.subarray(held)
      offset += held
    }
  }
}

async function uploadStatus(
  t: Transport,
  repository: string,
  location: URL,
  signal?: AbortSignal,
): Promise<{ size: number; location: URL }> {
  return t.call(
    { method: 'GET', url: location, scopes: [repositoryScope(repository, 'pull,push')], signal },
    async (res) => {
      await expectStatus(res, [204, 200], `GET ${location.pathname}`, {
        404: 'BLOB_UPLOAD_UNKNOWN',
      })
      await discardBody(res)
      const range = /^(?:bytes=)?0-(\d+)$/.exec(res.header('range') ?? '')
      // distribution answers `0-0` for an empty upload too; a 1-byte upload is not worth the doubt.
      const size = range && Number(range[1]) > 0 ? Number(range[1]) + 1 : 0
      return { size, location: res.header('location') ? nextLocation(res) : location }
    },
  )
}

/** PATCHes one chunk at `offset`; returns the Location for the next request. */
async function patchChunk(
  t: Transport,
  repository: string,
  location: URL,
  chunk: Buffer,
  offset: number,
  signal?: AbortSignal,
): Promise<URL> {
  const last = offset + chunk.length - 1
  return t.call(
    {
      method: 'PATCH',
      url: location,
      headers: {
        'content-type': OCTET,
        'content-range': `${offset}-${last}`,
        'content-length': String(chunk.length),
      },
      body: chunk,
      scopes: [repositoryScope(repository, 'pull,push')],
      signal,
    },
    async (res) => {
      await expectStatus(res, [202], `PATCH ${location.pathname}`, {
        404: 'BLOB_UPLOAD_UNKNOWN',
        400: 'BLOB_UPLOAD_INVALID',
      })
      await discardBody(res)
      // The Range header reports what the registry holds: `0-<last byte>`.
      const range = /^(?:bytes=)?0-(\d+)$/.exec(res.header('range') ?? '')
      if (range && Number(range[1]) !== last) {
        throw new OciError(
          'BLOB_UPLOAD_INVALID',
          `registry holds bytes 0-${range[1]} after a chunk ending at ${last}`,
          { status: 502 },
        )
      }
      return nextLocation(res)
    },
  )
}

/** Re-cuts a stream into `size`-byte buffers (the last one shorter). */
async function* chunksOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = []
  let held = 0
  for await (const data of stream as AsyncIterable<Buffer>) {
    let chunk = data
    while (held + chunk.length >= size) {
      const take = size - held
      parts.push(chunk.subarray(0, take))
      yield Buffer.concat(parts, size)
      chunk = chunk.subarray(take)
      parts = []
      held = 0
    }
    if (chunk.length > 0) {
      parts.push(chunk)
      held += chunk.length
    }
  }
  if (held > 0) yield Buffer.concat(parts, held)
}

function* slices(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size)
}
