import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { digestHex, type Digest } from '../../runtime/oci/index.ts'

/**
 * Where everything lives under the store's root (see README.md beside this file):
 *
 *   blobs/sha256/<hex[0:2]>/<hex>                        immutable content, manifests included
 *   repositories/<name>/_layers/sha256/<hex>             link: the blob belongs to <name>
 *   repositories/<name>/_manifests/revisions/sha256/<hex> link: the manifest; holds its media type
 *   repositories/<name>/_manifests/tags/<tag>            link: holds the tagged digest
 *   repositories/<name>/_referrers/sha256/<subject hex>/<hex>  descriptor JSON of a referrer
 *   uploads/<uuid>/{data,state.json}                     upload sessions in progress
 *   tmp/<uuid>                                           temp files, renamed into place
 *
 * Every path component comes from a validated name, tag, digest or upload id: repository name
 * components match [a-z0-9]+(sep[a-z0-9]+)* and tags [a-zA-Z0-9_][a-zA-Z0-9._-]*, so neither can be
 * `.`, `..` or start with `_` (which keeps `_layers` etc. apart from nested repository names).
 */
export class StoreLayout {
  readonly root: string
  readonly blobsDir: string
  readonly repositoriesDir: string
  readonly uploadsDir: string
  readonly tmpDir: string

  constructor(root: string) {
    this.root = root
    this.blobsDir = join(root, 'blobs', 'sha256')
    this.repositoriesDir = join(root, 'repositories')
    this.uploadsDir = join(root, 'uploads')
    this.tmpDir = join(root, 'tmp')
  }

  blob(digest: Digest): string {
    const hex = digestHex(digest)
    return join(this.blobsDir, hex.slice(0, 2), hex)
  }

  repository(name: string): string {
    return join(this.repositoriesDir, ...name.split('/'))
  }

  layerLink(name: string, digest: Digest): string {
    return join(this.repository(name), '_layers', 'sha256', digestHex(digest))
  }

  manifestsDir(name: string): string {
    return join(this.repository(name), '_manifests')
  }

  revision(name: string, digest: Digest): string {
    return join(this.manifestsDir(name), 'revisions', 'sha256', digestHex(digest))
  }

  tagsDir(name: string): string {
    return join(this.manifestsDir(name), 'tags')
  }

  tag(name: string, tag: string): string {
    return join(this.tagsDir(name), tag)
  }

  referrersDir(name: string, subject: Digest): string {
    return join(this.repository(name), '_referrers', 'sha256', digestHex(subject))
  }

  referrer(name: string, subject: Digest, digest: Digest): string {
    return join(this.referrersDir(name, subject), digestHex(digest))
  }

  upload(id: string): string {
    return join(this.uploadsDir, id)
  }

  uploadData(id: string): string {
    return join(this.uploadsDir, id, 'data')
  }

  uploadState(id: string): string {
    return join(this.uploadsDir, id, 'state.json')
  }

  /** A fresh temp file name on the store's filesystem (so rename into place is atomic). */
  tmpFile(): string {
    return join(this.tmpDir, randomUUID())
  }
}

/** Upload ids are UUIDs we made; anything else is unknown before it can reach a path. */
export const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
