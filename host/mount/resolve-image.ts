import {
  parseStreamingArtifact,
  pickStreamingArtifact,
  type StreamingArtifact,
} from '../../runtime/artifact/streaming-artifact.ts'
import { openBinaryIndex } from '../../runtime/format/binary-index.ts'
import { FsTree } from '../../runtime/format/fs-tree.ts'
import { parseFsIndex } from '../../runtime/format/index-codec.ts'
import type { IndexTree } from '../../runtime/format/index-tree.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import { selectManifest } from '../../runtime/oci/platform.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import { parseImageConfig, parseManifest, type ImageConfig } from '../../runtime/oci/schemas.ts'
import { MountError } from './errors.ts'
import type { IndexCache } from './index-cache.ts'
import type { SourceSet } from './source-set.ts'

export interface ResolvedImage {
  reference: string
  repository: string
  /** The original image manifest (a platform manifest when the reference names an index). */
  manifest: Digest
  config: ImageConfig
  artifact: StreamingArtifact
  /** The binary index read in place when the artifact has one, else the JSON index parsed. */
  index: IndexTree
}

export interface ResolveOptions {
  signal?: AbortSignal
  /** Told the image manifest's digest as soon as it is known (to start the bundle request). */
  onManifest?: (manifest: Digest) => void
  /** The image as already resolved for a mount of this manifest: the rest is skipped. */
  known?: (manifest: Digest) => ResolvedImage | undefined
  /** Indexes of earlier mounts (in memory, and their blobs on disk), by index blob digest. */
  indexes?: IndexCache
}

/**
 * reference → manifest digest → referrers (artifactType thaw streaming; the client falls back to
 * the `sha256-<hex>` tag where the registry has no referrers API) → the newest artifact → its
 * config and index blob (verified by digest) → FsIndex. Every blob is read verified. A manifest
 * that is mounted already (`known`) stops after the first request; an index in `indexes` is not
 * fetched again.
 */
export async function resolveImage(
  sources: SourceSet,
  reference: string,
  options: ResolveOptions = {},
): Promise<ResolvedImage> {
  const { signal, onManifest } = options
  const ref = parseImageReference(reference)
  const repo = ref.repository
  const call = async <T>(
    what: string,
    f: (c: SourceSet['sources'][number]['client'], s: AbortSignal) => Promise<T>,
  ) => (await sources.call(what, (source, s) => f(source.client, s), { signal })).value

  let top = await call(`manifest ${reference}`, (c, s) =>
    c.getManifest(repo, ref.digest ?? ref.tag!, { signal: s }),
  )
  let parsed = parseManifest(top.bytes, top.mediaType)
  if (parsed.kind === 'index') {
    const chosen = selectManifest(parsed.manifest)
    top = await call(`manifest ${chosen.digest}`, (c, s) =>
      c.getManifest(repo, chosen.digest, { signal: s }),
    )
    parsed = parseManifest(top.bytes, top.mediaType)
  }
  if (parsed.kind !== 'image') throw notStreamable(reference, 'the manifest is not an image')
  const manifest = top.digest
  const known = options.known?.(manifest)
  if (known) return { ...known, reference, repository: repo }
  onManifest?.(manifest)
  const referrers = await call(`referrers of ${manifest}`, (c, s) =>
    c.referrers(repo, manifest, { artifactType: MediaType.thawStreaming, signal: s }),
  )
  const chosen = pickStreamingArtifact(referrers)
  if (!chosen) throw notStreamable(reference, `no streaming artifact refers to ${manifest}`)
  const fetched = await call(`artifact ${chosen.digest}`, (c, s) =>
    c.getManifest(repo, chosen.digest, { signal: s }),
  )
  const artifactManifest = parseManifest(fetched.bytes, fetched.mediaType)
  if (artifactManifest.kind !== 'image')
    throw notStreamable(reference, 'the artifact is not a manifest')
  const cfg = artifactManifest.manifest.config
  const configBytes = await call(`artifact config ${cfg.digest}`, (c, s) =>
    c.readBlob(repo, cfg.digest, { size: cfg.size, maxBytes: 1 << 20, signal: s }),
  )
  const artifact = parseStreamingArtifact(fetched.bytes, configBytes)
  if (artifact.subject.digest !== manifest || artifact.config.source.manifest !== manifest) {
    throw new MountError('ARTIFACT_MISMATCH', `artifact ${artifact.digest} is not for ${manifest}`)
  }
  const imageConfig = parsed.manifest.config
  const indexBlob = artifact.binaryIndex ?? artifact.index
  const open = (bytes: Uint8Array): IndexTree =>
    artifact.binaryIndex
      ? openBinaryIndex(bytes, { digest: indexBlob.digest })
      : new FsTree(parseFsIndex(bytes, { digest: indexBlob.digest }))
  const held =
    options.indexes?.get(indexBlob.digest) ??
    (await fromDisk(options.indexes, indexBlob.digest, open))
  const [index, imageConfigBytes] = await Promise.all([
    held ??
      call(`index ${indexBlob.digest}`, (c, s) =>
        c.readBlob(repo, indexBlob.digest, { size: indexBlob.size, maxBytes: 64 << 20, signal: s }),
      ).then(async (bytes) => {
        const opened = open(bytes)
        await options.indexes?.storeBlob(indexBlob.digest, bytes)
        return opened
      }),
    call(`config ${imageConfig.digest}`, (c, s) =>
      c.readBlob(repo, imageConfig.digest, {
        size: imageConfig.size,
        maxBytes: 8 << 20,
        signal: s,
      }),
    ),
  ])
  const blobDigests = artifact.blobs.map((b) => b.digest)
  if (
    index.blobs.length !== blobDigests.length ||
    index.blobs.some((b, i) => b.digest !== blobDigests[i])
  ) {
    throw new MountError(
      'ARTIFACT_MISMATCH',
      `index of ${artifact.digest} names other blobs than its manifest`,
    )
  }
  options.indexes?.set(indexBlob.digest, index)
  return {
    reference,
    repository: repo,
    manifest,
    config: parseImageConfig(imageConfigBytes),
    artifact,
    index,
  }
}

/** An index blob kept on disk, opened through its digest check; a bad copy is not used. */
async function fromDisk(
  indexes: IndexCache | undefined,
  digest: Digest,
  open: (bytes: Uint8Array) => IndexTree,
): Promise<IndexTree | undefined> {
  const bytes = await indexes?.readBlob(digest)
  try {
    return bytes && open(bytes)
  } catch {
    return undefined
  }
}

function notStreamable(reference: string, why: string): MountError {
  return new MountError('IMAGE_NOT_STREAMABLE', `${reference} cannot be mounted lazily: ${why}`)
}
