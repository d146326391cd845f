import { describe, expect, it } from 'vitest'
import {
  buildStreamingArtifact,
  parseStreamingArtifact,
  pickStreamingArtifact,
  GENERATION_ANNOTATION,
} from '../../../runtime/artifact/index.ts'
import { MediaType, sha256Of, type Descriptor } from '../../../runtime/oci/index.ts'

const subject: Descriptor = {
  mediaType: MediaType.ociManifest,
  digest: sha256Of('image'),
  size: 500,
}
const index: Descriptor = { mediaType: MediaType.thawIndex, digest: sha256Of('index'), size: 10 }
const blob: Descriptor = { mediaType: MediaType.thawLayer, digest: sha256Of('blob'), size: 20 }
const config = {
  version: 1 as const,
  generation: 2,
  source: { manifest: subject.digest, layers: [sha256Of('l')] },
}

describe('streaming artifact manifest', () => {
  it('round-trips through build and parse', () => {
    const built = buildStreamingArtifact({ subject, config, index, blobs: [blob] })
    const parsed = parseStreamingArtifact(built.bytes, built.configBytes)
    expect(parsed.digest).toBe(built.digest)
    expect(parsed.index).toEqual(index)
    expect(parsed.blobs).toEqual([blob])
    expect(parsed.subject.digest).toBe(subject.digest)
    expect(parsed.generation).toBe(2)
    expect(built.manifest.artifactType).toBe(MediaType.thawStreaming)
  })

  it('refuses a manifest whose first layer is not the index', () => {
    const built = buildStreamingArtifact({ subject, config, index: blob, blobs: [blob] })
    expect(() => parseStreamingArtifact(built.bytes, built.configBytes)).toThrow(
      /layers\[0\] must be the index/,
    )
  })

  it('refuses a manifest that is not a streaming artifact', () => {
    const other = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest }),
    )
    expect(() => parseStreamingArtifact(other, new TextEncoder().encode('{}'))).toThrow(
      expect.objectContaining({ code: 'ARTIFACT_INVALID' }),
    )
  })

  it('picks the newest generation among referrers, ignoring other artifact types', () => {
    const ref = (
      g: number,
      seed: string,
      artifactType: string = MediaType.thawStreaming,
    ): Descriptor => ({
      mediaType: MediaType.ociManifest,
      digest: sha256Of(seed),
      size: 1,
      artifactType,
      annotations: { [GENERATION_ANNOTATION]: String(g) },
    })
    const newest = ref(3, 'c')
    expect(
      pickStreamingArtifact([ref(0, 'a'), newest, ref(9, 'p', MediaType.thawProfile), ref(1, 'b')]),
    ).toBe(newest)
    expect(pickStreamingArtifact([ref(0, 'p', MediaType.thawProfile)])).toBeUndefined()
  })
})
