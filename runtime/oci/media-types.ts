/**
 * Media types thaw reads and writes. OCI image-spec v1.1 and Docker Image Manifest V2 Schema 2
 * (which registries and clients still produce by default).
 */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  // thaw's own types (DESIGN.md "Formats").
  thawStreaming: 'application/vnd.thaw.streaming.v1',
  thawStreamingConfig: 'application/vnd.thaw.streaming.config.v1+json',
  thawIndex: 'application/vnd.thaw.index.v1+json+zstd',
  thawIndexBinary: 'application/vnd.thaw.index.v2+zstd',
  thawLayer: 'application/vnd.thaw.layer.v1.tar+zstd',
  thawLayerGzip: 'application/vnd.thaw.layer.v1.tar+gzip',
  thawProfile: 'application/vnd.thaw.profile.v1+json',
  thawBundle: 'application/vnd.thaw.bundle.v1',
} as const

export const MANIFEST_MEDIA_TYPES = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
] as const

export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number]

export function isManifestMediaType(value: string): value is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(value)
}

export function isIndexMediaType(value: string): boolean {
  return value === MediaType.ociIndex || value === MediaType.dockerManifestList
}

export function isImageManifestMediaType(value: string): boolean {
  return value === MediaType.ociManifest || value === MediaType.dockerManifest
}

export type LayerCompression = 'none' | 'gzip' | 'zstd'

/** How an image layer's bytes are compressed, or undefined if it is not a layer type thaw reads. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  switch (mediaType) {
    case MediaType.ociLayer:
    case MediaType.ociLayerNondistributable:
      return 'none'
    case MediaType.ociLayerGzip:
    case MediaType.ociLayerNondistributableGzip:
    case MediaType.dockerLayerGzip:
    case MediaType.dockerForeignLayerGzip:
      return 'gzip'
    case MediaType.ociLayerZstd:
      return 'zstd'
    default:
      return undefined
  }
}

/** The `Accept` header a client sends to get any manifest kind thaw understands. */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ')
