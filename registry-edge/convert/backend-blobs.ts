import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebStream } from 'node:stream/web'
import { OciError, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'

/**
 * Blob moves between a backend and local files, through the backend's own interface only (so the
 * converter works over the disk store and over a proxy backend alike).
 */

/** Stores `source` (a file path or bytes) as blob `digest` in `repository`, unless already there. */
export async function putBlob(
  backend: RegistryBackend,
  repository: string,
  digest: Digest,
  source: string | Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  if (await backend.statBlob(repository, digest)) return
  const upload = await backend.startUpload(repository)
  try {
    const body: AsyncIterable<Uint8Array> =
      typeof source === 'string' ? createReadStream(source) : Readable.from([source])
    await backend.appendUpload(repository, upload.id, { body, signal })
    await backend.finishUpload(repository, upload.id, digest)
  } catch (err) {
    await backend.cancelUpload(repository, upload.id).catch(() => {})
    throw err
  }
}

/** Copies a whole blob of `repository` to a local file (verified by the backend when stored). */
export async function copyBlobToFile(
  backend: RegistryBackend,
  repository: string,
  digest: Digest,
  path: string,
  signal?: AbortSignal,
): Promise<number> {
  const info = await backend.statBlob(repository, digest)
  if (!info) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not in ${repository}`)
  const out = createWriteStream(path, { flags: 'wx' })
  if (info.size === 0) {
    out.end()
    await pipeline(Readable.from([]), out)
    return 0
  }
  const web = backend.readBlob(digest, { start: 0, end: info.size - 1 }, signal)
  await pipeline(Readable.fromWeb(web as NodeWebStream<Uint8Array>), out, { signal })
  return info.size
}

/** A whole small blob (a config, an index, a profile) in memory. */
export async function readSmallBlob(
  backend: RegistryBackend,
  repository: string,
  digest: Digest,
  limit: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const info = await backend.statBlob(repository, digest)
  if (!info) throw new OciError('BLOB_UNKNOWN', `blob ${digest} is not in ${repository}`)
  if (info.size > limit) throw new OciError('SIZE_INVALID', `blob ${digest} is over ${limit} bytes`)
  if (info.size === 0) return new Uint8Array(0)
  return readRange(backend, digest, 0, info.size, signal)
}

/** Bytes `[offset, offset+length)` of a blob the caller knows exists. */
export async function readRange(
  backend: RegistryBackend,
  digest: Digest,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const web = backend.readBlob(digest, { start: offset, end: offset + length - 1 }, signal)
  for await (const chunk of web as AsyncIterable<Uint8Array>) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  if (bytes.length !== length) {
    throw new OciError('BLOB_UNKNOWN', `blob ${digest} gave ${bytes.length} bytes, not ${length}`)
  }
  return bytes
}
