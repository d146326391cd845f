import type { Digest } from '../../runtime/oci/digest.ts'
import type { Image } from '../../runtime/oci/image.ts'
import type { RegistryClient } from '../../runtime/oci/remote/registry-client.ts'
import type { Descriptor } from '../../runtime/oci/schemas.ts'

/** Progress of a push, for a bar: bytes of the blobs done so far (reused blobs count at once). */
export interface PushEvent {
  blob: Descriptor
  /** Bytes of this blob sent (or known present). */
  bytes: number
  /** Every blob's bytes sent or reused, and their total. */
  doneBytes: number
  totalBytes: number
  /** Set once the blob is finished: uploaded, or found in the registry / mounted from the base. */
  finished?: 'uploaded' | 'reused'
}

export interface PushedImage {
  digest: Digest
  /** Blobs whose bytes went up, and blobs the registry had or mounted (no bytes sent). */
  uploaded: Descriptor[]
  reused: Descriptor[]
}

/**
 * Pushes an image as `crane append` does: each blob is skipped when the repository has it (HEAD),
 * mounted from `mountFrom` (the base's repository, distribution-spec "Mounting a blob from
 * another repository") when that has it, and uploaded only otherwise (one PUT, or PATCH chunks
 * past the client's monolithic limit); then the manifest under `tag`. So the base's layers are
 * never sent again, only the app layer and the config.
 */
export async function pushAppImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  image: Image,
  options: {
    mountFrom?: string
    onProgress?: (e: PushEvent) => void
    signal?: AbortSignal
    chunkSize?: number
    monolithicMaxBytes?: number
  } = {},
): Promise<PushedImage> {
  const blobs = [...image.manifest.layers, image.manifest.config]
  const totalBytes = blobs.reduce((n, b) => n + b.size, 0)
  let done = 0
  const uploaded: Descriptor[] = []
  const reused: Descriptor[] = []
  const seen = new Set<string>()
  for (const blob of blobs) {
    if (seen.has(blob.digest)) continue
    seen.add(blob.digest)
    const pushed = await client.pushBlob(
      repository,
      () => image.openBlob(blob, { signal: options.signal }),
      blob,
      {
        signal: options.signal,
        mountFrom: options.mountFrom !== repository ? options.mountFrom : undefined,
        chunkSize: options.chunkSize,
        monolithicMaxBytes: options.monolithicMaxBytes,
        onProgress: (bytes) =>
          options.onProgress?.({ blob, bytes, doneBytes: done + bytes, totalBytes }),
      },
    )
    done += blob.size
    ;(pushed.uploaded ? uploaded : reused).push(blob)
    options.onProgress?.({
      blob,
      bytes: blob.size,
      doneBytes: done,
      totalBytes,
      finished: pushed.uploaded ? 'uploaded' : 'reused',
    })
  }
  const { digest } = await client.putManifest(
    repository,
    tag,
    image.manifestBytes,
    image.mediaType,
    {
      signal: options.signal,
    },
  )
  return { digest, uploaded, reused }
}
