import type { Readable } from 'node:stream'
import type { Digest } from '../digest.ts'
import { OciError, isOciError } from '../errors.ts'
import { headBlob } from './blobs.ts'
import type { CallOptions } from './manifests.ts'
import { expectStatus } from './response-error.ts'
import { discardBody, type RegistryResponse } from './response.ts'
import { repositoryScope } from './token-cache.ts'
import type { Transport } from './transport.ts'

// distribution-spec v1.1 "Pushing blobs": an upload session starts with a POST (end-4a), or a
// mount attempt (end-11) whose 202 is a session too, and ends with PUT `?digest=` (end-6).

export const OCTET = 'application/octet-stream'

export interface UploadSession {
  mounted: boolean
  location: URL
  minChunk: number
}

export async function startUpload(
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

/** The closing PUT `?digest=`, with the last bytes (or all of them) or none. */
export async function completeUpload(
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

export async function cancelUpload(
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

export function nextLocation(res: RegistryResponse): URL {
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
