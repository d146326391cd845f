import {
  parseStreamingArtifact,
  type StreamingArtifact,
} from '../../runtime/artifact/streaming-artifact.ts'
import { openBinaryIndex } from '../../runtime/format/binary-index.ts'
import { FsTree } from '../../runtime/format/fs-tree.ts'
import { parseFsIndex } from '../../runtime/format/index-codec.ts'
import type { IndexTree } from '../../runtime/format/index-tree.ts'
import type { BundleHeader } from '../../runtime/artifact/bundle.ts'
import { describeError } from '../../runtime/errors.ts'
import { sha256Of, type Digest } from '../../runtime/oci/digest.ts'
import { selectManifest } from '../../runtime/oci/platform.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import { parseImageConfig, parseManifest, type ImageConfig } from '../../runtime/oci/schemas.ts'
import { awaitStreamingArtifact } from './await-artifact.ts'
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
  warn?: (message: string) => void
  /** Told the image manifest's digest as soon as it is known (to start the bundle request). */
  onManifest?: (manifest: Digest) => void
  /** The image as already resolved for a mount of this manifest: the rest is skipped. */
  known?: (manifest: Digest) => ResolvedImage | undefined
  /**
   * The prefetch bundle's header and record 0, once they arrived (undefined: no bundle). With the
   * header's `start`, the image resolves from them: no referrers, artifact or index request.
   */
  bundleStart?: () => Promise<{ header: BundleHeader; record0: Uint8Array } | undefined>
  /** Indexes of earlier mounts (in memory, and their blobs on disk), by index blob digest. */
  indexes?: IndexCache
  /**
   * How long to wait for an edge that converts the image when it is first asked for (an image
   * pushed straight to the registry behind it). Default 120 s; 0 fails at once.
   */
  artifactWaitMs?: number
}

const DEFAULT_ARTIFACT_WAIT_MS = 120_000

/**
 * reference → manifest digest → referrers (artifactType thaw streaming; the client falls back to
 * the `sha256-<hex>` tag where the registry has no referrers API; an edge that is converting the
 * image is waited for, await-artifact.ts) → the newest artifact → its
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
  const imageConfig = parsed.manifest.config
  const finish = (artifact: StreamingArtifact, index: IndexTree, imageConfigBytes: Uint8Array) => {
    checkResolved(artifact, manifest, index)
    options.indexes?.set((artifact.binaryIndex ?? artifact.index).digest, index)
    const config = parseImageConfig(imageConfigBytes)
    return { reference, repository: repo, manifest, config, artifact, index }
  }
  const started = await options.bundleStart?.()
  if (started?.header.start) {
    try {
      const { artifact, index, imageConfigBytes } = fromBundle(started, imageConfig.digest)
      const resolved = finish(artifact, index, imageConfigBytes)
      await options.indexes?.storeBlob(started.header.records[0]!.blob, started.record0)
      return resolved
    } catch (err) {
      options.warn?.(`the bundle's start was not used: ${describeError(err)}`)
    }
  }
  const chosen = await awaitStreamingArtifact(sources, reference, repo, manifest, {
    timeoutMs: options.artifactWaitMs ?? DEFAULT_ARTIFACT_WAIT_MS,
    signal,
    warn: options.warn,
  })
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
  const indexBlob = artifact.binaryIndex ?? artifact.index
  const open = (bytes: Uint8Array) => openIndex(artifact, bytes)
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
  return finish(artifact, index, imageConfigBytes)
}

/** The artifact's index from its blob's bytes, through the blob's digest check. */
function openIndex(artifact: StreamingArtifact, bytes: Uint8Array): IndexTree {
  const digest = (artifact.binaryIndex ?? artifact.index).digest
  return artifact.binaryIndex
    ? openBinaryIndex(bytes, { digest })
    : new FsTree(parseFsIndex(bytes, { digest }))
}

/**
 * The artifact, index and image config from a bundle's header and record 0, each checked against
 * a digest already trusted: the artifact manifest against the header's `artifact` (the edge's
 * answer for this manifest), its config against the artifact's descriptor, record 0 against the
 * artifact's index descriptor, the image config against the image manifest's.
 */
function fromBundle(
  started: { header: BundleHeader; record0: Uint8Array },
  imageConfigDigest: Digest,
): { artifact: StreamingArtifact; index: IndexTree; imageConfigBytes: Uint8Array } {
  const { header, record0 } = started
  const bytes = (b64: string) => Buffer.from(b64, 'base64')
  const manifestBytes = bytes(header.start!.artifact)
  const configBytes = bytes(header.start!.config)
  const imageConfigBytes = bytes(header.start!.imageConfig)
  if (sha256Of(manifestBytes) !== header.artifact) throw mismatch('its artifact manifest')
  const artifact = parseStreamingArtifact(manifestBytes, configBytes)
  if (sha256Of(configBytes) !== artifact.manifest.config.digest)
    throw mismatch('its artifact config')
  if (sha256Of(imageConfigBytes) !== imageConfigDigest) throw mismatch('its image config')
  if (header.records[0]?.blob !== (artifact.binaryIndex ?? artifact.index).digest)
    throw mismatch('its record 0')
  return { artifact, index: openIndex(artifact, record0), imageConfigBytes }
}

/** The artifact is this manifest's, and its index names the artifact's blobs. */
function checkResolved(artifact: StreamingArtifact, manifest: Digest, index: IndexTree): void {
  if (artifact.subject.digest !== manifest || artifact.config.source.manifest !== manifest) {
    throw new MountError('ARTIFACT_MISMATCH', `artifact ${artifact.digest} is not for ${manifest}`)
  }
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
}

function mismatch(what: string): MountError {
  return new MountError('ARTIFACT_MISMATCH', `the bundle's start does not match ${what}`)
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

/**
 * An image as a mount's keeper holds it (fuse-keeper.ts), so a host restarted after a crash can
 * serve the mount again without a request: the artifact as bytes (checked by digest again when
 * used) and the image config as resolved.
 */
export interface KeptImage {
  reference: string
  repository: string
  manifest: Digest
  artifact: { digest: Digest; manifest: string; config: string }
  config: ImageConfig
}

export function keptImage(image: ResolvedImage): KeptImage {
  const { reference, repository, manifest, artifact, config } = image
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
  return {
    reference,
    repository,
    manifest,
    artifact: {
      digest: artifact.digest,
      manifest: b64(artifact.bytes),
      config: b64(artifact.configBytes),
    },
    config,
  }
}

/** The image of a kept mount, its index from the host's index cache (never the network). */
export async function resolveKept(kept: KeptImage, indexes: IndexCache): Promise<ResolvedImage> {
  const manifestBytes = Buffer.from(kept.artifact.manifest, 'base64')
  if (sha256Of(manifestBytes) !== kept.artifact.digest) {
    throw new MountError(
      'ARTIFACT_MISMATCH',
      `the kept artifact of ${kept.reference} is not ${kept.artifact.digest}`,
    )
  }
  const artifact = parseStreamingArtifact(
    manifestBytes,
    Buffer.from(kept.artifact.config, 'base64'),
  )
  const digest = (artifact.binaryIndex ?? artifact.index).digest
  const index =
    indexes.get(digest) ?? (await fromDisk(indexes, digest, (b) => openIndex(artifact, b)))
  if (!index)
    throw new MountError('MOUNT_FAILED', `the index of ${kept.reference} is no longer in the cache`)
  checkResolved(artifact, kept.manifest, index)
  indexes.set(digest, index)
  return {
    reference: kept.reference,
    repository: kept.repository,
    manifest: kept.manifest,
    config: kept.config,
    artifact,
    index,
  }
}
