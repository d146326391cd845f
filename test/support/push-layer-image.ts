import { MediaType } from '../../runtime/oci/index.ts'
import { expectStatus, pushBlob, pushManifest, sha256 } from './edge-client.ts'

/** A layer as pushed: its compressed bytes, media type and the DiffID of its tar. */
export interface PushedLayer {
  blob: Buffer
  mediaType: string
  diffId: string
}

/**
 * Pushes a linux/amd64 image of the given layers (config with their DiffIDs, so a conversion that
 * reads them fully succeeds) to `repo:tag`; returns the manifest digest (for `_thaw/status`).
 */
export async function pushLayerImage(
  url: string,
  repo: string,
  tag: string,
  layers: readonly PushedLayer[],
): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  )
  const descriptors = []
  for (const layer of layers) {
    const digest = await pushBlob(url, repo, layer.blob, 'monolithic')
    descriptors.push({ mediaType: layer.mediaType, digest, size: layer.blob.length })
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: MediaType.ociConfig,
        digest: await pushBlob(url, repo, config, 'monolithic'),
        size: config.length,
      },
      layers: descriptors,
    }),
  )
  await expectStatus(await pushManifest(url, repo, tag, manifest.toString()), 201)
  return sha256(manifest)
}
