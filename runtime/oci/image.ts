import { Readable } from 'node:stream'
import { VerifyingStream, sha256Of, type Digest } from './digest.ts'
import { OciError } from './errors.ts'
import { MediaType } from './media-types.ts'
import {
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from './schemas.ts'

/**
 * One platform's image, read-only (after go-containerregistry's `v1.Image`): the manifest and
 * config, parsed and kept as their exact bytes (digests are of bytes, never of re-serialized
 * JSON), and a way to open any blob it names. Sources: `openLayout(dir).image(ref)`,
 * `pullImage(client, …)`, `appendLayer(base, …)`. Sinks: `layout.writeImage`, `pushImage`.
 */
export interface Image {
  /** The manifest's media type (OCI or Docker v2 schema 2). */
  readonly mediaType: string
  readonly manifestBytes: Buffer
  readonly digest: Digest
  readonly manifest: ImageManifest
  readonly configBytes: Buffer
  readonly config: ImageConfig
  /** Opens a blob (the config or a layer) as it is stored, verified against `descriptor`. */
  openBlob(descriptor: Descriptor, options?: { signal?: AbortSignal }): Promise<Readable>
}

export type BlobOpener = (
  descriptor: Descriptor,
  options?: { signal?: AbortSignal },
) => Promise<Readable>

/**
 * Makes an `Image` from its manifest and config bytes. Checks that the config bytes are the
 * ones the manifest names. `openBlob` should verify (wrap with `verified`); a layer-less source
 * can rely on this: the config is served from memory.
 */
export function createImage(parts: {
  manifestBytes: Buffer
  mediaType?: string
  configBytes: Buffer
  openBlob: BlobOpener
}): Image {
  const parsed = parseManifest(parts.manifestBytes, parts.mediaType)
  if (parsed.kind !== 'image') {
    throw new OciError('MANIFEST_INVALID', `expected an image manifest, got ${parsed.mediaType}`)
  }
  const manifest = parsed.manifest
  const configType = manifest.config.mediaType
  if (configType !== MediaType.ociConfig && configType !== MediaType.dockerConfig) {
    throw new OciError('MANIFEST_INVALID', `not a container image: config type ${configType}`)
  }
  const configDigest = sha256Of(parts.configBytes)
  if (
    configDigest !== manifest.config.digest ||
    parts.configBytes.length !== manifest.config.size
  ) {
    throw new OciError(
      'DIGEST_INVALID',
      `config bytes are ${configDigest}, manifest names ${manifest.config.digest}`,
    )
  }
  const { configBytes, manifestBytes } = parts
  return {
    mediaType: parsed.mediaType,
    manifestBytes,
    digest: sha256Of(manifestBytes),
    manifest,
    configBytes,
    config: parseImageConfig(configBytes),
    async openBlob(descriptor, options) {
      if (descriptor.digest === configDigest)
        return verified(Readable.from([configBytes]), descriptor)
      return parts.openBlob(descriptor, options)
    },
  }
}

/** `stream` through a VerifyingStream for `descriptor`; errors of `stream` are passed on. */
export function verified(stream: Readable, descriptor: { digest: Digest; size: number }): Readable {
  const verifier = new VerifyingStream({ digest: descriptor.digest, size: descriptor.size })
  stream.on('error', (err) => verifier.destroy(err))
  verifier.on('close', () => stream.destroy())
  return stream.pipe(verifier)
}

/** The image's layers, in order (base first). */
export function layersOf(image: Image): Descriptor[] {
  return image.manifest.layers
}

/**
 * An image with no layers (go-containerregistry's `empty.Image`): the base for an image built
 * from scratch with `appendLayer`.
 */
export function emptyImage(
  platform: { os: string; architecture: string } = { os: 'linux', architecture: 'amd64' },
): Image {
  const configBytes = Buffer.from(
    JSON.stringify({
      ...platform,
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    }),
  )
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: {
      mediaType: MediaType.ociConfig,
      digest: sha256Of(configBytes),
      size: configBytes.length,
    },
    layers: [],
  }
  return createImage({
    manifestBytes: Buffer.from(JSON.stringify(manifest)),
    configBytes,
    openBlob: async (d) => {
      throw new OciError('BLOB_UNKNOWN', `the empty image has no blob ${d.digest}`)
    },
  })
}
