import { createReadStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseDigest, digestHex, type Digest } from '../../runtime/oci/digest.ts'
import { layerCompression, type LayerCompression } from '../../runtime/oci/media-types.ts'

/** One layer of an image in an OCI layout directory (as umoci writes it). */
export interface LayoutLayer {
  digest: Digest
  mediaType: string
  compression: LayerCompression
  size: number
  path: string
  open: () => AsyncIterable<Uint8Array>
}

/** The layers, bottom first, of the image tagged `tag` in the OCI layout at `layout`. */
export function layoutLayers(
  layout: string,
  tag: string,
): { layers: LayoutLayer[]; diffIds: string[] } {
  const blob = (d: Digest) => join(layout, 'blobs', 'sha256', digestHex(d))
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[]
  }
  const desc = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  )
  if (desc === undefined) throw new Error(`no tag ${tag} in ${layout}`)
  const manifest = JSON.parse(readFileSync(blob(parseDigest(desc.digest)), 'utf8')) as {
    config: { digest: string }
    layers: { digest: string; mediaType: string; size: number }[]
  }
  const config = JSON.parse(readFileSync(blob(parseDigest(manifest.config.digest)), 'utf8')) as {
    rootfs: { diff_ids: string[] }
  }
  const layers = manifest.layers.map((l) => {
    const digest = parseDigest(l.digest)
    const compression = layerCompression(l.mediaType)
    if (compression === undefined) throw new Error(`unknown layer media type ${l.mediaType}`)
    const path = blob(digest)
    return {
      digest,
      mediaType: l.mediaType,
      compression,
      size: l.size,
      path,
      open: () => createReadStream(path, { highWaterMark: 1 << 20 }),
    }
  })
  return { layers, diffIds: config.rootfs.diff_ids }
}
