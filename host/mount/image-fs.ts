import { framesFor } from '../../runtime/format/frame-fetcher.ts'
import type { FsIndex } from '../../runtime/format/fs-index.ts'
import { FsTree, type FsNode } from '../../runtime/format/fs-tree.ts'
import { FsError } from './errors.ts'
import type { FrameLoader } from './frame-loader.ts'

/** The tree of each index mounted, kept while the index is (an IndexCache hit mounts it again). */
const trees = new WeakMap<FsIndex, FsTree>()

/** What the FUSE adapter reports for a path (it turns `type` into mode bits). */
export interface FsStat {
  type: FsNode['type']
  /** Permission bits with setuid/setgid/sticky. */
  perm: number
  uid: number
  gid: number
  size: number
  ino: number
  nlink: number
  devMajor: number
  devMinor: number
  mtimeMs: number
}

/** Who wants to know about accesses (the profile recorder). */
export interface AccessObserver {
  open(path: string): void
  read(path: string, offset: number, length: number): void
}

/**
 * The image's read-only filesystem, independent of any FUSE binding: metadata is answered from the
 * in-memory index, content through the frame loader and the cache. Paths are as FUSE gives them
 * (`/usr/bin/env`). Errors are `FsError`s with an errno name.
 */
export class ImageFs {
  readonly index: FsIndex
  readonly #tree: FsTree
  readonly #loader: FrameLoader
  readonly observers = new Set<AccessObserver>()
  readonly #totalBytes: number

  constructor(index: FsIndex, loader: FrameLoader) {
    this.index = index
    let tree = trees.get(index)
    if (!tree) trees.set(index, (tree = new FsTree(index)))
    this.#tree = tree
    this.#loader = loader
    this.#totalBytes = index.entries.reduce((n, e) => n + e.size, 0)
  }

  getattr(path: string): FsStat {
    const n = this.#node(path)
    return {
      type: n.type,
      perm: n.mode & 0o7777,
      uid: n.uid,
      gid: n.gid,
      size: n.type === 'symlink' ? Buffer.byteLength(n.linkTarget) : n.size,
      ino: n.ino,
      nlink: n.nlink,
      devMajor: n.devMajor,
      devMinor: n.devMinor,
      mtimeMs: n.mtime * 1000 + Math.floor(n.mtimeNsec / 1e6),
    }
  }

  readdir(path: string): { names: string[]; stats: FsStat[] } {
    const dir = this.#node(path)
    if (dir.type !== 'directory') throw new FsError('ENOTDIR')
    const names = this.#tree.readdir(dir.path)
    const prefix = dir.path === '' ? '' : `${dir.path}/`
    return { names, stats: names.map((name) => this.getattr(prefix + name)) }
  }

  readlink(path: string): string {
    const n = this.#node(path)
    if (n.type !== 'symlink') throw new FsError('EINVAL')
    return n.linkTarget
  }

  getxattr(path: string, name: string): Buffer {
    const value = this.#node(path).xattrs.get(name)
    if (value === undefined) throw new FsError('ENODATA')
    return value
  }

  listxattr(path: string): string[] {
    return [...this.#node(path).xattrs.keys()]
  }

  open(path: string): void {
    const n = this.#node(path)
    if (n.type === 'directory') throw new FsError('EISDIR')
    for (const o of this.observers) o.open(path)
  }

  /**
   * Reads into `buf` (at most `length` bytes at file offset `position`); the byte count. Answers
   * synchronously when every frame it needs is in the cache (the common case once warm), so the
   * FUSE adapter replies without waiting for a promise.
   */
  read(path: string, buf: Buffer, length: number, position: number): number | Promise<number> {
    const n = this.#node(path)
    if (n.type !== 'file') throw new FsError('EISDIR')
    const end = Math.min(n.size, position + length)
    if (position >= end) return 0
    for (const o of this.observers) o.read(path, position, end - position)
    const span = framesFor(this.index, n, position, end - position)!
    const blob = this.#loader.blobs[span.blob]!
    const copy = () => blob.readInto(buf, end - position, n.offset + position)
    if (this.#loader.readableNow(span.blob, span.first, span.last)) return copy()
    return this.#loader.ensure(span.blob, span.first, span.last).then(
      copy,
      (err: Error) => {
        throw new FsError('EIO', err.message)
      },
    )
  }

  statfs(): { blocks: number; files: number } {
    return { blocks: Math.ceil(this.#totalBytes / 4096), files: this.index.entries.length }
  }

  #node(path: string): FsNode {
    const n = this.#tree.lookup(path)
    if (n === undefined) throw new FsError('ENOENT')
    return n
  }
}
