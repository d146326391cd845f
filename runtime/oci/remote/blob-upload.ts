import { Transform, type Readable } from 'node:stream'
import { Hasher, parseDigest, sha256Of, type Digest } from '../digest.ts'
import { OciError, isOciError } from '../errors.ts'
import { parseRepositoryName } from '../reference.ts'
import { headBlob } from './blobs.ts'
import type { CallOptions } from './manifests.ts'
import { expectStatus } from './response-error.ts'
import { backoffDelay, isRetryable, sleep } from './retry.ts'
import { discardBody, type RegistryResponse } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Pushing blobs": POST then PUT (end-4a, end-6), chunked POST, PATCH…,
// PUT (end-5, end-6), "Mounting a blob from another repository" (end-11), upload status (end-13).

/** Blob bytes, or a function that opens them anew (called again when a request is repeated). */
export type BlobSource = Buffer | (() => Readable | Promise<Readable>)

export interface PushBlobOptions extends CallOptions {
  /** Blobs up to this size go up in one PUT; larger ones in chunks. Default 16 MiB. */
  monolithicMaxBytes?: number
  /** Chunk size for chunked uploads, raised to the registry's `OCI-Chunk-Min-Length`. Default 8 MiB. */
  chunkSize?: number
  /** Try a cross-repository mount from this repository first (same registry). */
  mountFrom?: string
  /** Called with the number of bytes of this blob sent so far. */
  onProgress?: (bytes: number) => void
}

export interface PushedBlob {
  digest: Digest
  size: number
  /** False when the registry already had it (or mounted it): no bytes were sent. */
  uploaded: boolean
}

const OCTET = 'application/octet-stream'

/**
 * Pushes a blob unless the registry has it already. The upload session comes from a POST (or a
 * mount attempt, whose 202 fallback is an upload session too), then either one PUT with the
 * whole body, or PATCHes of `Content-Range: <start>-<end>` chunks and a closing PUT `?digest=`.
 * Each response's `Location` (relative or absolute) is where the next request goes. A failed
 * upload is cancelled (DELETE of the session), best effort.
 */
export async function pushBlob(
  t: Transport,
  repository: string,
  source: BlobSource,
  expected: { digest: Digest; size: number },
  options: PushBlobOptions = {},
): Promise<PushedBlob> {
  parseRepositoryName(repository)
  const digest = parseDigest(expected.digest)
  const { size } = expected
  if (Buffer.isBuffer(source) && (source.length !== size || sha256Of(source) !== digest)) {
    throw new OciError(
      'DIGEST_INVALID',
      `the bytes given for ${digest} (${source.length} bytes) do not match it`,
    )
  }
  if ((await headBlob(t, repository, digest, options)) !== undefined) {
    return { digest, size, uploaded: false }
  }
  const monolithic = size <= (options.monolithicMaxBytes ?? 16 * 1024 * 1024)
  // An upload that failed on the way (and could not be resumed) starts over in a new session:
  // the source can be read again. Registries that encode the offset in the upload URL (CNCF
  // distribution's `_state`) refuse to resume after a PATCH whose answer was lost.
  for (let round = 1; ; round++) {
    const session = await startUpload(t, repository, digest, options)
    if (session.mounted) return { digest, size, uploaded: false }
    try {
      if (monolithic) await putWhole(t, repository, session.location, source, digest, size, options)
      else await putChunks(t, repository, session, source, digest, size, options)
      return { digest, size, uploaded: true }
    } catch (err) {
      void cancelUpload(t, repository, session.location).catch(() => undefined)
      if (options.signal?.aborted || round >= t.retry.attempts || !isRetryable(err, true)) throw err
      await sleep(backoffDelay(t.retry, round), options.signal)
    }
  }
}

/** Mounts `digest` from `fromRepository`: true when mounted (201), false when not (202). */
export async function mountBlob(
  t: Transport,
  repository: string,
  fromRepository: string,
  digest: Digest,
  options: CallOptions = {},
): Promise<boolean> {
  parseRepositoryName(fromRepository)
  const session = await startUpload(t, repository, digest, {
    ...options,
    mountFrom: fromRepository,
  })
  if (session.mounted) return true
  await cancelUpload(t, repository, session.location, options.signal).catch(() => undefined)
  return false
}

interface UploadSession {
  mounted: boolean
  location: URL
  minChunk: number
}

async function startUpload(
  t: Transport,
  repository: string,
  digest: Digest,
  options: CallOptions & { mountFrom?: string },
): Promise<UploadSession> {
  const url = new URL(`/v2/${repository}/blobs/uploads/`, t.registry)
  const scopes = [repositoryScope(repository, 'pull,push')]
  if (options.mountFrom) {
    url.searchParams.set('mount', digest)
    url.searchParams.set('from', options.mountFrom)
    scopes.push(repositoryScope(options.mountFrom, 'pull'))
  }
  return t.call({ method: 'POST', url, scopes, signal: options.signal }, async (res) => {
    await expectStatus(res, [201, 202], `POST ${url.pathname}`, { 404: 'NAME_UNKNOWN' })
    await discardBody(res)
    if (res.status === 201) return { mounted: true, location: res.url, minChunk: 0 }
    const minChunk = Number(res.header('oci-chunk-min-length'))
    return {
      mounted: false,
      location: nextLocation(res),
      minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? minChunk : 0,
    }
  })
}

async function putWhole(
  t: Transport,
  repository: string,
  location: URL,
  source: BlobSource,
  digest: Digest,
  size: number,
  options: PushBlobOptions,
): Promise<void> {
  const progress = options.onProgress
  const body = Buffer.isBuffer(source) ? source : async () => counted(await source(), progress)
  await completeUpload(t, repository, location, digest, body, size, options.signal)
  if (Buffer.isBuffer(source)) progress?.(size)
}

async function putChunks(
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

/** The closing PUT `?digest=`, with the last bytes (or all of them) or none. */
async function completeUpload(
  t: Transport,
  repository: string,
  location: URL,
  digest: Digest,
  body: Buffer | (() => Promise<Readable>) | undefined,
  size: number,
  signal?: AbortSignal,
): Promise<void> {
  const url = new URL(location)
  url.searchParams.set('digest', digest)
  try {
    await t.call(
      {
        method: 'PUT',
        url,
        headers: { 'content-type': OCTET, 'content-length': String(size) },
        body: body ?? Buffer.alloc(0),
        scopes: [repositoryScope(repository, 'pull,push')],
        signal,
      },
      async (res) => {
        await expectStatus(res, [201, 204], `PUT ${url.pathname}`, {
          404: 'BLOB_UPLOAD_UNKNOWN',
          400: 'DIGEST_INVALID',
        })
        await discardBody(res)
        const claimed = res.header('docker-content-digest')
        if (claimed && claimed !== digest) {
          throw new OciError(
            'DIGEST_INVALID',
            `registry stored ${claimed} for an upload of ${digest}`,
            { status: 502 },
          )
        }
      },
    )
  } catch (err) {
    // A repeated PUT finds its session gone when the first one succeeded but its answer was lost.
    if (
      isOciError(err, 'BLOB_UPLOAD_UNKNOWN') &&
      (await headBlob(t, repository, digest, { signal })) !== undefined
    )
      return
    throw err
  }
}

async function cancelUpload(
  t: Transport,
  repository: string,
  location: URL,
  signal?: AbortSignal,
): Promise<void> {
  await t.call(
    { method: 'DELETE', url: location, scopes: [repositoryScope(repository, 'pull,push')], signal },
    discardBody,
  )
}

function nextLocation(res: RegistryResponse): URL {
  const location = res.header('location')
  if (!location) {
    throw new OciError(
      'BLOB_UPLOAD_INVALID',
      `${res.url.pathname}: upload response without Location`,
      { status: 502 },
    )
  }
  return new URL(location, res.url)
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

/** `stream`, reporting the bytes that flowed through it so far; its errors pass through. */
function counted(stream: Readable, onProgress: ((bytes: number) => void) | undefined): Readable {
  let sent = 0
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length
      onProgress?.(sent)
      done(null, chunk)
    },
  })
  stream.on('error', (err) => counter.destroy(err))
  return stream.pipe(counter)
}
