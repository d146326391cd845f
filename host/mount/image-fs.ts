import { framesFor } from '../../runtime/format/frame-fetcher.ts'
import type { FsNode } from '../../runtime/format/fs-tree.ts'
import type { IndexTree } from '../../runtime/format/index-tree.ts'
import type { FuseDir, FuseOpen, FuseOps, FuseStat } from '../fuse/fuse-session.ts'
import { FsError } from './errors.ts'
import { FileCache } from './file-cache.ts'
import type { FrameLoader } from './frame-loader.ts'

/** Who wants to know about accesses (the profile recorder); paths are absolute (`/usr/bin/env`). */
export interface AccessObserver {
  open(path: string): void
  read(path: string, offset: number, length: number): void
}

/**
 * The image's read-only filesystem, by inode number, as the FUSE layer asks for it (FuseOps):
 * metadata from the in-memory index, content through the frame loader and the cache. Errors are
 * `FsError`s with an errno name.
 */
export class ImageFs implements FuseOps {
  readonly index: IndexTree
  readonly #loader: FrameLoader
  readonly observers = new Set<AccessObserver>()
  /** Who waits for the next open (nextAccess). */
  readonly #awaitingAccess: (() => void)[] = []
  #files: FileCache | undefined

  constructor(index: IndexTree, loader: FrameLoader) {
    this.index = index
    this.#loader = loader
  }

  lookup(parent: number, name: string): FuseStat | undefined {
    const dir = this.#node(parent)
    if (dir.type !== 'directory') throw new FsError('ENOTDIR')
    const n = this.index.child(dir, name)
    return n && statOf(n)
  }

  getattr(ino: number): FuseStat {
    return statOf(this.#node(ino))
  }

  readdir(ino: number): FuseDir {
    const dir = this.#node(ino)
    if (dir.type !== 'directory') throw new FsError('ENOTDIR')
    const names = this.index.children(dir)
    return { names, stats: names.map((name) => statOf(this.index.child(dir, name)!)) }
  }

  readlink(ino: number): string {
    const n = this.#node(ino)
    if (n.type !== 'symlink') throw new FsError('EINVAL')
    return n.linkTarget
  }

  getxattr(ino: number, name: string): Buffer | undefined {
    return this.#node(ino).xattrs.get(name)
  }

  listxattr(ino: number): string[] {
    return [...this.#node(ino).xattrs.keys()]
  }

  /**
   * Resolves at the next open of a file here: a process has begun using the image (every read
   * follows an open, and every open reaches thaw, also with passthrough and direct reads).
   */
  nextAccess(): Promise<void> {
    return new Promise((resolve) => this.#awaitingAccess.push(resolve))
  }

  /** Opens of local files pass through to copies in `files` from now on (the kernel has it). */
  passThrough(files: FileCache): void {
    this.#files = files
  }

  /**
   * A file with a complete local copy is opened in passthrough mode on it: the kernel reads and
   * maps the copy itself. A file of at least PASSTHROUGH_MIN_BYTES whose frames are all here, or
   * on their way in the bundle, gets its copy made first (the open waits for it); anything else
   * is read through FUSE. Small files are not copied on open: one FUSE read costs less than
   * making a file.
   */
  open(ino: number): FuseOpen | Promise<FuseOpen> {
    const n = this.#node(ino)
    if (n.type === 'directory') throw new FsError('EISDIR')
    if (this.#awaitingAccess.length > 0) for (const f of this.#awaitingAccess.splice(0)) f()
    for (const o of this.observers) o.open(`/${n.path}`)
    if (n.type !== 'file' || n.size === 0) return {}
    // Read through FUSE: its reads of cached frames are answered in C (host/fuse direct reads).
    const cached: FuseOpen = { direct: { blob: n.blob, offset: n.offset, size: n.size } }
    // While a start is recorded every read must reach the recorder: no passthrough then.
    const files = this.observers.size === 0 ? this.#files : undefined
    if (!files) return cached
    const key = FileCache.key(this.#loader.blobs[n.blob]!.hex, n.offset, n.size)
    const fd = files.openSync(key)
    if (fd !== undefined) return { backingFd: fd }
    const making = files.making(key)
    if (making) return making.then(() => this.#backing(files, key, cached))
    if (n.size < PASSTHROUGH_MIN_BYTES) return cached
    const span = framesFor(this.index, n, 0, n.size)!
    const { blob, first, last } = span
    let ready: Promise<void>
    if (this.#loader.readableNow(blob, first, last)) ready = Promise.resolve()
    else if (this.#loader.coming(blob, first, last)) ready = this.#loader.ensure(blob, first, last)
    else return cached
    return ready
      .then(() =>
        files.put(key, n.size, (t) => this.#loader.blobs[blob]!.copyTo(t, n.offset, n.size)),
      )
      .then(
        () => this.#backing(files, key, cached),
        () => cached,
      )
  }

  #backing(files: FileCache, key: string, otherwise: FuseOpen): FuseOpen {
    const fd = files.openSync(key)
    return fd === undefined ? otherwise : { backingFd: fd }
  }

  /**
   * Up to `length` bytes at `position`. Answers synchronously when every frame it needs is in the
   * cache (the common case once warm), so the reply needs no promise.
   */
  read(ino: number, position: number, length: number): Buffer | Promise<Buffer> {
    const n = this.#node(ino)
    if (n.type !== 'file') throw new FsError('EISDIR')
    const end = Math.min(n.size, position + length)
    if (position >= end) return Buffer.alloc(0)
    for (const o of this.observers) o.read(`/${n.path}`, position, end - position)
    const span = framesFor(this.index, n, position, end - position)!
    const blob = this.#loader.blobs[span.blob]!
    const copy = () => {
      const buf = Buffer.allocUnsafe(end - position)
      const got = blob.readInto(buf, end - position, n.offset + position)
      // A short read inside the file would tell the kernel the file ends here: never answered.
      if (got !== end - position)
        throw new FsError(
          'EIO',
          `/${n.path}: the cache holds ${got} of ${end - position} bytes at ${position}`,
        )
      return buf
    }
    if (this.#loader.readableNow(span.blob, span.first, span.last)) return copy()
    return this.#loader.ensure(span.blob, span.first, span.last).then(copy, (err: Error) => {
      throw new FsError('EIO', err.message)
    })
  }

  statfs(): { blocks: number; files: number } {
    return { blocks: Math.ceil(this.index.totalBytes / 4096), files: this.index.entryCount }
  }

  #node(ino: number): FsNode {
    const n = this.index.node(ino)
    if (n === undefined) throw new FsError('ENOENT')
    return n
  }
}

/** Files below this are read through FUSE until a copy exists (one or two READs of 1 MiB). */
const PASSTHROUGH_MIN_BYTES = 128 * 1024

const TYPE_BITS: Record<FsNode['type'], number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
}

function statOf(n: FsNode): FuseStat {
  return {
    ino: n.ino,
    mode: TYPE_BITS[n.type] | (n.mode & 0o7777),
    nlink: n.nlink,
    uid: n.uid,
    gid: n.gid,
    // Linux makedev: minor low byte, major next 12 bits, minor's high bits above.
    rdev: ((n.devMajor & 0xfff) << 8) | (n.devMinor & 0xff) | ((n.devMinor & ~0xff) << 12),
    size: n.type === 'symlink' ? Buffer.byteLength(n.linkTarget) : n.size,
    mtime: n.mtime,
    mtimeNsec: n.mtimeNsec,
  }
}
