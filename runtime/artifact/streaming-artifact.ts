import { z } from 'zod'
import { ThawError } from '../errors.ts'
import { isDigest, sha256Of, type Digest } from '../oci/digest.ts'
import { MediaType } from '../oci/media-types.ts'
import { descriptorSchema, type Descriptor, type ImageManifest } from '../oci/schemas.ts'

/**
 * The streaming artifact of an image: an OCI image manifest (image-spec v1.1 "artifact" form)
 *
 *   artifactType  application/vnd.thaw.streaming.v1
 *   config        application/vnd.thaw.streaming.config.v1+json  (StreamingConfig below)
 *   layers[0]     the index blob        application/vnd.thaw.index.v1+json+zstd
 *   layers[1..n]  the streaming blobs   application/vnd.thaw.layer.v1.tar+zstd (or +gzip),
 *                 one per original layer, bottom first (the index's `blobs`, same order)
 *   layers[n+1]   (optional) the same index in binary form   application/vnd.thaw.index.v2+zstd
 *                 (runtime/format/binary-index.ts): hosts that know it read it instead
 *   subject       the original image manifest
 *   annotations   dev.thaw.generation: "<n>"  (re-layouts by a profile bump it)
 *
 * The annotations are copied into the referrers list (distribution-spec v1.1, "Listing
 * Referrers"), so a host picks the newest artifact from the list alone.
 */
export const GENERATION_ANNOTATION = 'dev.thaw.generation'

export interface StreamingConfig {
  version: 1
  /** 0 for the first conversion; each re-layout by a newer profile adds one. */
  generation: number
  /** The original image: its manifest and its layers (compressed digests), bottom first. */
  source: { manifest: Digest; layers: Digest[] }
  /** The merged profile the blobs were laid out by, if any. */
  profile?: Digest
}

export interface StreamingArtifact {
  manifest: ImageManifest
  bytes: Uint8Array
  digest: Digest
  config: StreamingConfig
  configBytes: Uint8Array
  index: Descriptor
  /** The binary form of the index, when the artifact has one (artifacts from 2026-12 on). */
  binaryIndex?: Descriptor
  blobs: Descriptor[]
  subject: Descriptor
  generation: number
}

const digest = z.string().refine(isDigest, 'must be sha256:<64 lowercase hex>')
const configSchema = z.object({
  version: z.literal(1),
  generation: z.number().int().nonnegative(),
  source: z.object({ manifest: digest, layers: z.array(digest) }),
  profile: digest.optional(),
})

const artifactManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MediaType.ociManifest),
  artifactType: z.literal(MediaType.thawStreaming),
  config: descriptorSchema.extend({ mediaType: z.literal(MediaType.thawStreamingConfig) }),
  layers: z.array(descriptorSchema).min(1),
  subject: descriptorSchema,
  annotations: z.record(z.string(), z.string()).optional(),
})

const encoder = new TextEncoder()

export function buildStreamingArtifact(input: {
  subject: Descriptor
  config: StreamingConfig
  index: Descriptor
  binaryIndex?: Descriptor
  blobs: Descriptor[]
}): StreamingArtifact {
  const configBytes = encoder.encode(JSON.stringify(input.config))
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: MediaType.thawStreaming,
    config: {
      mediaType: MediaType.thawStreamingConfig,
      digest: sha256Of(configBytes),
      size: configBytes.length,
    },
    layers: [input.index, ...input.blobs, ...(input.binaryIndex ? [input.binaryIndex] : [])],
    subject: descriptorOf(input.subject),
    annotations: { [GENERATION_ANNOTATION]: String(input.config.generation) },
  }
  const bytes = encoder.encode(JSON.stringify(manifest))
  return {
    manifest,
    bytes,
    digest: sha256Of(bytes),
    config: input.config,
    configBytes,
    index: input.index,
    ...(input.binaryIndex && { binaryIndex: input.binaryIndex }),
    blobs: input.blobs,
    subject: manifest.subject!,
    generation: input.config.generation,
  }
}

/** Parses an artifact manifest and its config blob (already verified by digest by the caller). */
export function parseStreamingArtifact(
  bytes: Uint8Array,
  configBytes: Uint8Array,
): StreamingArtifact {
  const manifest = parseJson(bytes, artifactManifestSchema, 'streaming artifact manifest')
  const config = parseJson(configBytes, configSchema, 'streaming artifact config')
  const [index, ...rest] = manifest.layers
  const binaryIndex = rest.at(-1)?.mediaType === MediaType.thawIndexBinary ? rest.pop() : undefined
  const blobs = rest
  if (index!.mediaType !== MediaType.thawIndex) {
    throw invalid(`layers[0] must be the index (${MediaType.thawIndex}), got ${index!.mediaType}`)
  }
  const layerTypes: string[] = [MediaType.thawLayer, MediaType.thawLayerGzip]
  const odd = blobs.find((b) => !layerTypes.includes(b.mediaType))
  if (odd) throw invalid(`unexpected layer media type ${odd.mediaType}`)
  return {
    manifest: manifest as ImageManifest,
    bytes,
    digest: sha256Of(bytes),
    config,
    configBytes,
    index: index!,
    ...(binaryIndex && { binaryIndex }),
    blobs,
    subject: manifest.subject,
    generation: config.generation,
  }
}

/**
 * The artifact to mount among an image's referrers: the highest generation (a re-layout by a
 * newer profile supersedes the older artifact), ties broken by digest so every host agrees.
 */
export function pickStreamingArtifact(referrers: readonly Descriptor[]): Descriptor | undefined {
  const generation = (d: Descriptor) => Number(d.annotations?.[GENERATION_ANNOTATION] ?? 0) || 0
  return referrers
    .filter((d) => d.artifactType === MediaType.thawStreaming)
    .sort((a, b) => generation(b) - generation(a) || (a.digest < b.digest ? -1 : 1))[0]
}

function descriptorOf(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size }
}

function parseJson<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string): T {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw invalid(`${what} is not JSON: ${(err as Error).message}`)
  }
  const result = schema.safeParse(value)
  if (!result.success) throw invalid(`${what}: ${z.prettifyError(result.error)}`)
  return result.data
}

function invalid(message: string): ThawError {
  return new ThawError('ARTIFACT_INVALID', message, { fault: 'user' })
}
