import { Transform, type Readable } from 'node:stream'
import { parseDigest, sha256Of, type Digest } from '../digest.ts'
import { OciError } from '../errors.ts'
import { parseRepositoryName } from '../reference.ts'
import { headBlob } from './blobs.ts'
import { putChunks } from './chunked-upload.ts'
import type { CallOptions } from './manifests.ts'
import { abortReason, backoffDelay, isRetryable, sleep } from './retry.ts'
import type { Transport } from './transport.ts'
import { cancelUpload, completeUpload, startUpload } from './upload-session.ts'

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
      if (options.signal?.aborted) throw abortReason(options.signal)
      if (round >= t.retry.attempts || !isRetryable(err, true)) throw err
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
