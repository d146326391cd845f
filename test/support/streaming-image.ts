import { createReadStream, createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildStreamingArtifact, type StreamingArtifact } from '../../runtime/artifact/streaming-artifact.ts'
import { encodeBundlePrefix, type BundleRecord } from '../../runtime/artifact/bundle.ts'
import { writableSink } from '../../runtime/format/blob-sink.ts'
import { buildFsIndex } from '../../runtime/format/image-index.ts'
import { encodeBinaryIndex } from '../../runtime/format/binary-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../runtime/format/index-codec.ts'
import type { FsIndex } from '../../runtime/format/fs-index.ts'
import type { LayerToc } from '../../runtime/format/layer-toc.ts'
import { writeLayer, type WriteLayerOptions } from '../../runtime/format/layer-writer.ts'
import { parseDigest, sha256Of, type Digest } from '../../runtime/oci/digest.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { layoutLayers } from './oci-layout.ts'
import { readLayoutImage } from './edge-image.ts'
import { tmpDir } from './tmp.ts'

/**
 * An image from an OCI layout (umoci, node-base, ...) pushed to a real registry together with a
 * streaming artifact made here with runtime/format, linked by `subject` (the client maintains the
 * `sha256-<hex>` fallback tag where the registry has no referrers API, as distribution 2.8).
 * Stands in for the edge's conversion on push, so mount tests need no converting edge.
 */
export interface PushedStreamingImage {
  /** `host:port/repo:tag`, what acquire() and `thaw mount` take. */
  reference: string
  repository: string
  manifest: Digest
  artifact: StreamingArtifact
  index: FsIndex
  /** Streaming blobs on local disk (index order), to build bundles from. */
  blobPaths: string[]
  indexBytes: Buffer
  /** The binary index blob, when the artifact has one. */
  binaryIndexBytes?: Buffer
  /** The original image's config blob. */
  imageConfigBytes: Buffer
}

export interface PushStreamingOptions {
  registry: string
  repository: string
  layout: string
  tag: string
  /** Frame cuts and order passed to the Writer (small frames make small files span several). */
  framing?: Pick<WriteLayerOptions, 'groupBytes' | 'splitBytes' | 'order' | 'safety'>
  /** Where the streaming blobs are written (default a test temporary directory; benches pass one). */
  workDir?: string
  /** Publish the binary index too, as the edge does (default true; false: an artifact from before it). */
  binaryIndex?: boolean
}

export async function pushStreamingImage(options: PushStreamingOptions): Promise<PushedStreamingImage> {
  const { registry, repository, layout, tag } = options
  const client = createRegistryClient({ registry })
  try {
    const original = await readLayoutImage(layout, tag)
    const blobFile = (d: string) => join(layout, 'blobs', ...d.split(':'))
    for (const d of original.blobs) {
      const size = (await readFile(blobFile(d))).length
      await client.pushBlob(repository, () => createReadStream(blobFile(d)), { digest: parseDigest(d), size })
    }
    const mediaType = MediaType.ociManifest
    const { digest: manifest } = await client.putManifest(repository, tag, original.bytes, mediaType)

    const dir = options.workDir ?? (await tmpDir('thaw-streaming-'))
    const { layers } = layoutLayers(layout, tag)
    const tocs: LayerToc[] = []
    const blobPaths: string[] = []
    for (const [i, layer] of layers.entries()) {
      const path = join(dir, `stream-${i}`)
      const out = createWriteStream(path)
      tocs.push(await writeLayer(layer.open, writableSink(out), { compression: layer.compression, ...options.framing }))
      await new Promise((resolve) => out.end(resolve))
      blobPaths.push(path)
    }
    const fsIndex = buildFsIndex(tocs)
    const indexBytes = encodeFsIndex(fsIndex)
    const indexDesc = { mediaType: MediaType.thawIndex, digest: sha256Of(indexBytes), size: indexBytes.length }
    await client.pushBlob(repository, indexBytes, indexDesc)
    let binaryIndex: { mediaType: string; digest: Digest; size: number } | undefined
    let binary: Buffer | undefined
    if (options.binaryIndex !== false) {
      binary = encodeBinaryIndex(fsIndex)
      binaryIndex = { mediaType: MediaType.thawIndexBinary, digest: sha256Of(binary), size: binary.length }
      await client.pushBlob(repository, binary, binaryIndex)
    }
    const blobs = tocs.map((t) => ({ mediaType: MediaType.thawLayer, digest: t.blob.digest, size: t.blob.size }))
    for (const [i, b] of blobs.entries()) {
      await client.pushBlob(repository, () => createReadStream(blobPaths[i]!), b)
    }
    const artifact = buildStreamingArtifact({
      subject: { mediaType, digest: manifest, size: original.bytes.length },
      config: { version: 1, generation: 0, source: { manifest, layers: layers.map((l) => l.digest) } },
      index: indexDesc,
      binaryIndex,
      blobs,
    })
    await client.pushBlob(repository, Buffer.from(artifact.configBytes), artifact.manifest.config)
    await client.pushReferrer(repository, Buffer.from(artifact.bytes), MediaType.ociManifest)
    const host = new URL(registry).host
    return {
      reference: `${host}/${repository}:${tag}`,
      repository,
      manifest,
      artifact,
      index: parseFsIndex(indexBytes, { digest: indexDesc.digest }),
      blobPaths,
      indexBytes,
      binaryIndexBytes: binary,
      imageConfigBytes: await readFile(blobFile((JSON.parse(Buffer.from(original.bytes).toString()) as { config: { digest: string } }).config.digest)),
    }
  } finally {
    await client.close()
  }
}

/**
 * A prefetch bundle (runtime/artifact/bundle.ts layout) of an image for the given files: the index
 * blob, then for each file (in order) the run of frames holding it. What the edge will serve.
 */
export async function buildBundle(
  image: PushedStreamingImage,
  paths: readonly string[],
  /** start: false for an edge that sends none; 'tampered' for an image config that is not the image's. */
  options: { start?: boolean | 'tampered' } = {},
): Promise<Buffer> {
  // Record 0 is the index the host reads: the binary one when the artifact has it (as the edge).
  const index = image.binaryIndexBytes ?? image.indexBytes
  const records: BundleRecord[] = [{ blob: sha256Of(index), offset: 0, length: index.length }]
  const parts: Buffer[] = [index]
  const seen = new Set<string>()
  for (const p of paths) {
    const e = image.index.entries.find((x) => x.path === p.replace(/^\//, ''))
    if (!e || e.type !== 'file' || e.size === 0) continue
    const frames = image.index.blobs[e.blob]!.frames
    const first = frames.findIndex((f) => e.offset >= f.uoff && e.offset < f.uoff + f.ulen)
    let last = first
    while (frames[last]!.uoff + frames[last]!.ulen < e.offset + e.size) last++
    const key = `${e.blob}:${first}:${last}`
    if (seen.has(key)) continue
    seen.add(key)
    const offset = frames[first]!.coff
    const length = frames[last]!.coff + frames[last]!.clen - offset
    const bytes = (await readFile(image.blobPaths[e.blob]!)).subarray(offset, offset + length)
    records.push({ blob: image.index.blobs[e.blob]!.digest, offset, length })
    parts.push(bytes)
  }
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
  const start = options.start === false ? undefined : {
    artifact: b64(image.artifact.bytes),
    config: b64(image.artifact.configBytes),
    imageConfig: b64(options.start === 'tampered' ? Buffer.from('{"os":"plan9"}') : image.imageConfigBytes),
  }
  const prefix = encodeBundlePrefix({ version: 1, artifact: image.artifact.digest, profile: sha256Of('test profile'), start, records })
  return Buffer.concat([prefix, ...parts])
}
