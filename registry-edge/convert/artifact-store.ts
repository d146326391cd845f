import {
  buildStreamingArtifact,
  parseStreamingArtifact,
  type StreamingArtifact,
  type StreamingConfig,
} from '../../runtime/artifact/index.ts'
import { MediaType, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import { putBlob, readSmallBlob } from './backend-blobs.ts'
import type { ConvertResult } from './convert-job.ts'

const MAX_CONFIG_BYTES = 1024 * 1024

/**
 * The streaming artifacts of an image as the backend's referrers list shows them, parsed (manifest
 * and config), newest generation first. Artifacts that do not parse are ignored: they are not ours.
 */
export async function listArtifacts(
  backend: RegistryBackend,
  repository: string,
  subject: Digest,
): Promise<StreamingArtifact[]> {
  const out: StreamingArtifact[] = []
  for (const d of await backend.listReferrers(repository, subject)) {
    if (d.artifactType !== MediaType.thawStreaming) continue
    const artifact = await loadArtifact(backend, repository, d.digest).catch(() => undefined)
    if (artifact && artifact.config.source.manifest === subject) out.push(artifact)
  }
  return out.sort((a, b) => b.generation - a.generation || (a.digest < b.digest ? -1 : 1))
}

/** One artifact manifest and its config, or undefined when the manifest is not there. */
export async function loadArtifact(
  backend: RegistryBackend,
  repository: string,
  digest: Digest,
): Promise<StreamingArtifact | undefined> {
  const stored = await backend.getManifest(repository, { digest })
  if (!stored) return undefined
  const manifest = JSON.parse(new TextDecoder().decode(stored.bytes)) as { config?: Descriptor }
  if (!manifest.config) return undefined
  const configBytes = await readSmallBlob(
    backend,
    repository,
    manifest.config.digest,
    MAX_CONFIG_BYTES,
  )
  return parseStreamingArtifact(stored.bytes, configBytes)
}

/**
 * Stores a conversion's outputs in the image's repository: the streaming blobs, the index blob,
 * the config, then the artifact manifest with the image as its `subject`, so the referrers API
 * lists it (with artifactType and the generation annotation). Blobs first: a manifest is never
 * visible before what it references. Storing the same outputs again changes nothing.
 */
export async function publishArtifact(
  backend: RegistryBackend,
  repository: string,
  input: { subject: Descriptor; config: StreamingConfig; result: ConvertResult },
  signal?: AbortSignal,
): Promise<StreamingArtifact> {
  const { result } = input
  const layerType = result.codec === 'zstd' ? MediaType.thawLayer : MediaType.thawLayerGzip
  const artifact = buildStreamingArtifact({
    subject: input.subject,
    config: input.config,
    index: { mediaType: MediaType.thawIndex, digest: result.index.digest, size: result.index.size },
    binaryIndex: {
      mediaType: MediaType.thawIndexBinary,
      digest: result.binaryIndex.digest,
      size: result.binaryIndex.size,
    },
    blobs: result.blobs.map((b) => ({ mediaType: layerType, digest: b.digest, size: b.size })),
  })
  for (const file of [result.index, ...result.blobs, result.binaryIndex]) {
    await putBlob(backend, repository, file.digest, file.path, signal)
  }
  await putBlob(backend, repository, artifact.manifest.config.digest, artifact.configBytes, signal)
  const descriptor: Descriptor = {
    mediaType: MediaType.ociManifest,
    digest: artifact.digest,
    size: artifact.bytes.length,
    artifactType: MediaType.thawStreaming,
    annotations: artifact.manifest.annotations,
  }
  await backend.putManifest(repository, {
    digest: artifact.digest,
    mediaType: MediaType.ociManifest,
    bytes: artifact.bytes,
    referrer: { subject: input.subject.digest, descriptor },
  })
  return artifact
}
