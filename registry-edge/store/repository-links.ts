import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  descriptorSchema,
  digestHex,
  isDigest,
  type Descriptor,
  type Digest,
} from '../../runtime/oci/index.ts'
import { isNotFound, readIfExists, type AtomicFiles } from './atomic-files.ts'
import type { StoreLayout } from './store-layout.ts'

/**
 * The per-repository part of the store: small link files that say what belongs to a repository
 * (layers, manifest revisions, tags, referrers). Each is written atomically; content lives in
 * BlobFiles. Writers order their steps so a crash between two of them leaves nothing dangling:
 * content before the links that name it, and links removed before what they name.
 */
export class RepositoryLinks {
  readonly #layout: StoreLayout
  readonly #atomic: AtomicFiles

  constructor(layout: StoreLayout, atomic: AtomicFiles) {
    this.#layout = layout
    this.#atomic = atomic
  }

  // Layers: `_layers/sha256/<hex>` holds the digest (for people reading the store).
  hasLayer(name: string, digest: Digest): Promise<boolean> {
    return exists(this.#layout.layerLink(name, digest))
  }

  linkLayer(name: string, digest: Digest): Promise<void> {
    return this.#atomic.write(this.#layout.layerLink(name, digest), digest)
  }

  unlinkLayer(name: string, digest: Digest): Promise<boolean> {
    return removeFile(this.#layout.layerLink(name, digest))
  }

  // Manifest revisions: `_manifests/revisions/sha256/<hex>` holds the media type.
  async revisionMediaType(name: string, digest: Digest): Promise<string | undefined> {
    return readIfExists(this.#layout.revision(name, digest))
  }

  linkRevision(name: string, digest: Digest, mediaType: string): Promise<void> {
    return this.#atomic.write(this.#layout.revision(name, digest), mediaType)
  }

  unlinkRevision(name: string, digest: Digest): Promise<boolean> {
    return removeFile(this.#layout.revision(name, digest))
  }

  // Tags: `_manifests/tags/<tag>` holds the digest.
  async tagDigest(name: string, tag: string): Promise<Digest | undefined> {
    const text = await readIfExists(this.#layout.tag(name, tag))
    return isDigest(text) ? text : undefined
  }

  linkTag(name: string, tag: string, digest: Digest): Promise<void> {
    return this.#atomic.write(this.#layout.tag(name, tag), digest)
  }

  unlinkTag(name: string, tag: string): Promise<boolean> {
    return removeFile(this.#layout.tag(name, tag))
  }

  /** Sorted tags; undefined when the repository has never had a manifest. */
  async listTags(name: string): Promise<string[] | undefined> {
    if (!(await exists(this.#layout.manifestsDir(name)))) return undefined
    return (await listDir(this.#layout.tagsDir(name))).sort()
  }

  async tagsOf(name: string, digest: Digest): Promise<string[]> {
    const tags = (await this.listTags(name)) ?? []
    const targets = await Promise.all(tags.map((t) => this.tagDigest(name, t)))
    return tags.filter((_, i) => targets[i] === digest)
  }

  // Referrers: `_referrers/sha256/<subject hex>/<hex>` holds the referrer's descriptor as JSON.
  linkReferrer(name: string, subject: Digest, descriptor: Descriptor): Promise<void> {
    const path = this.#layout.referrer(name, subject, descriptor.digest)
    return this.#atomic.write(path, JSON.stringify(descriptor))
  }

  unlinkReferrer(name: string, subject: Digest, digest: Digest): Promise<boolean> {
    return removeFile(this.#layout.referrer(name, subject, digest))
  }

  async listReferrers(name: string, subject: Digest): Promise<Descriptor[]> {
    const dir = this.#layout.referrersDir(name, subject)
    const files = (await listDir(dir)).sort()
    const texts = await Promise.all(files.map((f) => readIfExists(join(dir, f))))
    const out: Descriptor[] = []
    texts.forEach((text, i) => {
      const descriptor = text === undefined ? undefined : parseStoredDescriptor(text)
      // A file whose name does not match its content was not written by this store: skip it.
      if (descriptor && digestHex(descriptor.digest) === files[i]) out.push(descriptor)
    })
    return out
  }

  /** Repositories that have a `_manifests` directory, sorted. */
  async listRepositories(): Promise<string[]> {
    const out: string[] = []
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
        if (isNotFound(err)) return []
        throw err
      })
      for (const entry of entries) {
        if (!entry.isDirectory()) continue
        if (entry.name === '_manifests') out.push(prefix)
        else if (!entry.name.startsWith('_')) {
          await walk(join(dir, entry.name), prefix ? `${prefix}/${entry.name}` : entry.name)
        }
      }
    }
    await walk(this.#layout.repositoriesDir, '')
    return out.sort()
  }
}

function parseStoredDescriptor(text: string): Descriptor | undefined {
  try {
    const result = descriptorSchema.safeParse(JSON.parse(text))
    return result.success ? result.data : undefined
  } catch {
    return undefined
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if (isNotFound(err)) return false
    throw err
  }
}

async function removeFile(path: string): Promise<boolean> {
  const existed = await exists(path)
  await rm(path, { force: true })
  return existed
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isNotFound(err)) return []
    throw err
  }
}
