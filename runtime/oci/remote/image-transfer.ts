import { OciError } from '../errors.ts'
import type { Digest } from '../digest.ts'
import { createImage, verified, type Image } from '../image.ts'
import { selectManifest } from '../platform.ts'
import { parseManifest, type Descriptor, type Platform } from '../schemas.ts'
import type { RegistryClient } from './registry-client.ts'

export interface PushProgress {
  /** Bytes of blobs sent so far (blobs the registry had count as sent). */
  bytes: number
  totalBytes: number
}

/**
 * Pushes an image: its blobs (those the registry lacks, `concurrency` at a time; config and
 * layers), then its manifest under `tag`. `mountFrom` names a repository on the same registry to
 * mount blobs from instead of uploading them.
 */
export async function pushImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  image: Image,
  options: {
    signal?: AbortSignal
    concurrency?: number
    mountFrom?: string
    onProgress?: (p: PushProgress) => void
  } = {},
): Promise<{ digest: Digest; mediaType: string; size: number }> {
  const blobs = unique([image.manifest.config, ...image.manifest.layers])
  const totalBytes = blobs.reduce((n, b) => n + b.size, 0)
  const sent = new Map<Digest, number>()
  const report = () =>
    options.onProgress?.({ bytes: [...sent.values()].reduce((a, b) => a + b, 0), totalBytes })
  const { signal } = options
  await eachLimited(blobs, options.concurrency ?? 3, async (blob) => {
    const pushed = await client.pushBlob(repository, () => image.openBlob(blob, { signal }), blob, {
      signal,
      mountFrom: options.mountFrom,
      onProgress: (n) => {
        sent.set(blob.digest, n)
        report()
      },
    })
    sent.set(blob.digest, pushed.size)
    report()
  })
  const { digest } = await client.putManifest(
    repository,
    tag,
    image.manifestBytes,
    image.mediaType,
    { signal },
  )
  return { digest, mediaType: image.mediaType, size: image.manifestBytes.length }
}

/**
 * An image in a registry, by tag or digest; an index is resolved to `platform` (default: this
 * host's). Manifest and config are read now; layers when opened, verified as they stream.
 */
export async function pullImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  options: { signal?: AbortSignal; platform?: Platform } = {},
): Promise<Image> {
  const { signal } = options
  let fetched = await client.getManifest(repository, reference, { signal })
  let parsed = parseManifest(fetched.bytes, fetched.mediaType)
  if (parsed.kind === 'index') {
    const chosen = selectManifest(parsed.manifest, options.platform)
    fetched = await client.getManifest(repository, chosen.digest, { signal })
    parsed = parseManifest(fetched.bytes, fetched.mediaType)
    if (parsed.kind !== 'image')
      throw new OciError('MANIFEST_INVALID', `${chosen.digest} is not an image manifest`)
  }
  const config = parsed.manifest.config
  const configBytes = await client.readBlob(repository, config.digest, {
    size: config.size,
    maxBytes: 8 * 1024 * 1024,
    signal,
  })
  return createImage({
    manifestBytes: fetched.bytes,
    mediaType: parsed.mediaType,
    configBytes,
    async openBlob(descriptor, o) {
      const res = await client.getBlob(repository, descriptor.digest, { signal: o?.signal })
      return verified(res.body, descriptor)
    },
  })
}

function unique(descriptors: Descriptor[]): Descriptor[] {
  const seen = new Set<string>()
  return descriptors.filter((d) => !seen.has(d.digest) && seen.add(d.digest))
}

/** Runs `fn` over `items`, at most `limit` at a time; after a failure no new item starts. */
async function eachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  let failed = false
  const worker = async () => {
    while (next < items.length && !failed) {
      try {
        await fn(items[next++]!)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
