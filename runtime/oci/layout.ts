import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  VerifyingStream,
  digestHex,
  isDigest,
  parseDigest,
  sha256Of,
  type Digest,
} from './digest.ts'
import { OciError } from './errors.ts'
import { createImage, verified, type Image } from './image.ts'
import { MediaType, isIndexMediaType } from './media-types.ts'
import { selectManifest } from './platform.ts'
import {
  MAX_MANIFEST_BYTES,
  parseManifest,
  type Descriptor,
  type ImageIndex,
  type Platform,
} from './schemas.ts'

/**
 * An OCI image layout directory (image-spec v1.1 `image-layout.md`):
 *
 *   <dir>/oci-layout          {"imageLayoutVersion":"1.0.0"}
 *   <dir>/index.json          an image index; tags are `org.opencontainers.image.ref.name`
 *   <dir>/blobs/sha256/<hex>  every blob, named by its digest
 *
 * What skopeo (`oci:<dir>:<tag>`) and umoci read and write. Blobs are written to a temporary
 * name, verified, then renamed, so a blob path never holds unverified bytes; index.json is
 * replaced atomically. Concurrent writers to one index.json are not coordinated.
 */
export interface OciLayout {
  readonly dir: string
  index(): Promise<ImageIndex>
  /** The index entry for a tag (`ref.name` annotation) or a manifest digest. */
  resolve(reference: string): Promise<Descriptor>
  /** The image a tag or digest names; an index is resolved to `platform` (default: this host's). */
  image(reference: string, options?: { platform?: Platform }): Promise<Image>
  hasBlob(digest: Digest): Promise<boolean>
  readBlob(digest: Digest, options?: { maxBytes?: number }): Promise<Buffer>
  /** A blob's bytes, verified against the descriptor while they stream. */
  openBlob(descriptor: { digest: Digest; size: number }): Promise<Readable>
  /** Stores bytes or a stream, verified against `expected` when given. */
  writeBlob(
    source: Buffer | Readable,
    expected?: { digest: Digest; size: number },
  ): Promise<{ digest: Digest; size: number }>
  /** Adds a manifest to index.json, tagged (taking the tag from any other entry) or not. */
  addManifest(descriptor: Descriptor, options?: { tag?: string }): Promise<void>
  /** Writes an image's blobs and manifest, and tags it. Returns the manifest digest. */
  writeImage(image: Image, options?: { tag?: string; signal?: AbortSignal }): Promise<Digest>
}

export const REF_NAME = 'org.opencontainers.image.ref.name'
const LAYOUT_FILE = { imageLayoutVersion: '1.0.0' }

/** Opens an existing layout; fails with NAME_UNKNOWN when `dir` is not one. */
export async function openLayout(dir: string): Promise<OciLayout> {
  let version: unknown
  try {
    version = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))
  } catch (err) {
    throw new OciError(
      'NAME_UNKNOWN',
      `${dir} is not an OCI layout (no readable oci-layout file)`,
      { cause: err },
    )
  }
  if ((version as { imageLayoutVersion?: unknown })?.imageLayoutVersion !== '1.0.0') {
    throw new OciError('UNSUPPORTED', `${dir}: unsupported imageLayoutVersion`)
  }
  return layoutAt(dir)
}

/** Opens `dir` as a layout, creating it (and an empty index) if it is not one yet. */
export async function createLayout(dir: string): Promise<OciLayout> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
  if (!(await exists(join(dir, 'oci-layout'))))
    await writeFile(join(dir, 'oci-layout'), JSON.stringify(LAYOUT_FILE))
  if (!(await exists(join(dir, 'index.json')))) {
    await writeAtomic(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
    )
  }
  return openLayout(dir)
}

function layoutAt(dir: string): OciLayout {
  const blobPath = (digest: Digest) => join(dir, 'blobs', 'sha256', digestHex(parseDigest(digest)))

  async function index(): Promise<ImageIndex> {
    const parsed = parseManifest(await readFile(join(dir, 'index.json')))
    if (parsed.kind !== 'index')
      throw new OciError('MANIFEST_INVALID', `${dir}/index.json is not an image index`)
    return parsed.manifest
  }

  async function readBlob(digest: Digest, options: { maxBytes?: number } = {}): Promise<Buffer> {
    const bytes = await readFile(blobPath(digest)).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new OciError('BLOB_UNKNOWN', `${dir}: no blob ${digest}`) : err
    })
    if (options.maxBytes !== undefined && bytes.length > options.maxBytes) {
      throw new OciError(
        'SIZE_INVALID',
        `${dir}: blob ${digest} is larger than ${options.maxBytes} bytes`,
      )
    }
    if (sha256Of(bytes) !== digest)
      throw new OciError('DIGEST_INVALID', `${dir}: blob ${digest} is corrupt`, { status: 500 })
    return bytes
  }

  async function openBlob(descriptor: { digest: Digest; size: number }): Promise<Readable> {
    const path = blobPath(descriptor.digest)
    if (!(await exists(path)))
      throw new OciError('BLOB_UNKNOWN', `${dir}: no blob ${descriptor.digest}`)
    return verified(createReadStream(path), descriptor)
  }

  async function writeBlob(source: Buffer | Readable, expected?: { digest: Digest; size: number }) {
    if (expected && (await exists(blobPath(expected.digest)))) {
      if (!Buffer.isBuffer(source)) source.destroy()
      return { digest: expected.digest, size: expected.size }
    }
    const tmp = join(dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`)
    const verifier = new VerifyingStream(expected ?? {})
    try {
      await pipeline(
        Buffer.isBuffer(source) ? Readable.from([source]) : source,
        verifier,
        createWriteStream(tmp),
      )
      await rename(tmp, blobPath(verifier.digest))
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return { digest: verifier.digest, size: verifier.size }
  }

  async function addManifest(
    descriptor: Descriptor,
    options: { tag?: string } = {},
  ): Promise<void> {
    const current = await index()
    const { tag } = options
    const kept = current.manifests.filter((d) =>
      tag
        ? d.annotations?.[REF_NAME] !== tag
        : !(d.digest === descriptor.digest && !d.annotations?.[REF_NAME]),
    )
    const entry: Descriptor = { ...descriptor }
    if (tag) entry.annotations = { ...descriptor.annotations, [REF_NAME]: tag }
    const next = {
      ...current,
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [...kept, entry],
    }
    await writeAtomic(join(dir, 'index.json'), JSON.stringify(next))
  }

  async function resolve(reference: string): Promise<Descriptor> {
    const manifests = (await index()).manifests
    const found = isDigest(reference)
      ? manifests.find((d) => d.digest === reference)
      : manifests.find((d) => d.annotations?.[REF_NAME] === reference)
    if (!found) throw new OciError('MANIFEST_UNKNOWN', `${dir}: no manifest ${reference}`)
    return found
  }

  return {
    dir,
    index,
    resolve,
    hasBlob: (digest) => exists(blobPath(digest)),
    readBlob,
    openBlob,
    writeBlob,
    addManifest,
    async image(reference, options = {}) {
      let descriptor = await resolve(reference)
      if (isIndexMediaType(descriptor.mediaType)) {
        const nested = parseManifest(
          await readBlob(descriptor.digest, { maxBytes: MAX_MANIFEST_BYTES }),
          descriptor.mediaType,
        )
        if (nested.kind !== 'index')
          throw new OciError('MANIFEST_INVALID', `${descriptor.digest} is not an index`)
        descriptor = selectManifest(nested.manifest, options.platform)
      }
      const manifestBytes = await readBlob(descriptor.digest, { maxBytes: MAX_MANIFEST_BYTES })
      const parsed = parseManifest(manifestBytes, descriptor.mediaType)
      if (parsed.kind !== 'image')
        throw new OciError('MANIFEST_INVALID', `${descriptor.digest} is not an image manifest`)
      return createImage({
        manifestBytes,
        mediaType: parsed.mediaType,
        configBytes: await readBlob(parsed.manifest.config.digest),
        openBlob: (d) => openBlob(d),
      })
    },
    async writeImage(image, options = {}) {
      for (const layer of image.manifest.layers) {
        if (!(await exists(blobPath(layer.digest)))) {
          await writeBlob(await image.openBlob(layer, { signal: options.signal }), layer)
        }
      }
      await writeBlob(image.configBytes, image.manifest.config)
      await writeBlob(image.manifestBytes, {
        digest: image.digest,
        size: image.manifestBytes.length,
      })
      const descriptor = {
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.manifestBytes.length,
      }
      await addManifest(descriptor, { tag: options.tag })
      return image.digest
    },
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  await writeFile(tmp, data)
  await rename(tmp, path)
}
