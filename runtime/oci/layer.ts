import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import { sha256Of, type Digest } from './digest.ts'
import { MediaType } from './media-types.ts'
import type { Descriptor } from './schemas.ts'

/**
 * A layer to add to an image: its blob as stored (compressed or not), and its DiffID, the sha256
 * of the uncompressed tar, which the image config lists (image-spec config.md "rootfs").
 */
export interface Layer {
  readonly descriptor: Descriptor
  readonly diffId: Digest
  open(options?: { signal?: AbortSignal }): Promise<Readable>
}

/**
 * A layer from tar bytes in memory, gzip-compressed by default (the layer type every runtime and
 * registry takes). Meant for application layers of a few hundred MB at most.
 */
export async function layerFromTar(
  tar: Buffer,
  options: { compression?: 'gzip' | 'none'; annotations?: Record<string, string> } = {},
): Promise<Layer> {
  const gzipped = options.compression !== 'none'
  const blob = gzipped ? await promisify(gzip)(tar) : tar
  const descriptor: Descriptor = {
    mediaType: gzipped ? MediaType.ociLayerGzip : MediaType.ociLayer,
    digest: sha256Of(blob),
    size: blob.length,
  }
  if (options.annotations) descriptor.annotations = options.annotations
  return { descriptor, diffId: sha256Of(tar), open: async () => Readable.from([blob]) }
}
