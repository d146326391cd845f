import { FormatError } from './errors.ts'
import type { FsEntry, FsIndex } from './fs-index.ts'
import type { LayerToc, TocEntry } from './layer-toc.ts'

const OPAQUE = '.wh..wh..opq'
const WHITEOUT = '.wh.'

/**
 * Merges converted layers (bottom first) into one index of the image's root filesystem, as
 * `umoci unpack` (OCI image-spec layer.md "Applying Changesets") would leave it on disk:
 *
 * - a layer's whiteouts apply to the layers below it only: `.wh.<name>` removes `<name>` and
 *   everything under it, `.wh..wh..opq` removes every lower child of its directory;
 * - an entry replaces what was at its path, except a directory over a directory, which takes the
 *   upper metadata and keeps its children;
 * - a missing parent is created as umoci's MkdirAll does: mode 0755 (0777 under umask 022),
 *   owned by 0:0; its mtime is the epoch (umoci's would be the unpack time);
 * - hard links become regular files sharing the target's content, metadata and inode group.
 *
 * A layer entry under a symlink or a non-directory of a lower layer is refused: resolving it
 * would write through a link, which thaw never does.
 */
export function buildFsIndex(layers: readonly LayerToc[]): FsIndex {
  const tree = new Tree()
  let nextGroup = 1
  layers.forEach((layer, blob) => {
    // Parents before children, so replacing a lower non-directory never drops this layer's entries.
    const own = layer.entries.filter((e) => !basename(e.path).startsWith(WHITEOUT)).sort(byPath)
    for (const e of layer.entries) if (basename(e.path).startsWith(WHITEOUT)) tree.whiteout(e.path)
    const byName = new Map(own.map((e) => [e.path, e]))
    const groups = new Map<string, number>()
    for (const e of own) {
      if (e.type !== 'hardlink') continue
      const target = linkRoot(e, byName)
      if (!groups.has(target.path)) groups.set(target.path, nextGroup++)
    }
    for (const e of own) tree.put(toFsEntry(e, blob, byName, groups))
    for (const e of own) tree.ensureParents(e.path)
  })
  if (!tree.has('')) tree.put(implicitDir(''))
  return {
    version: 1,
    codec: layers[0]?.codec ?? 'zstd',
    blobs: layers.map((l) => ({
      digest: l.blob.digest,
      size: l.blob.size,
      tarSize: l.tarSize,
      diffId: l.diffId,
      prefetchEnd: l.prefetchEnd,
      frames: l.frames,
    })),
    entries: tree.sorted(),
  }
}

function toFsEntry(
  e: TocEntry,
  blob: number,
  layer: Map<string, TocEntry>,
  groups: Map<string, number>,
): FsEntry {
  const source = e.type === 'hardlink' ? linkRoot(e, layer) : e
  const group = groups.get(source.path) ?? 0
  return {
    path: e.path,
    type: e.type === 'hardlink' ? 'file' : e.type,
    mode: source.mode,
    uid: source.uid,
    gid: source.gid,
    size: source.size,
    mtime: source.mtime,
    mtimeNsec: source.mtimeNsec,
    linkTarget: e.type === 'symlink' ? e.linkName : '',
    devMajor: e.devMajor,
    devMinor: e.devMinor,
    xattrs: source.xattrs,
    blob: source.type === 'file' && source.size > 0 ? blob : -1,
    offset: source.type === 'file' && source.size > 0 ? source.offset : 0,
    hardlinkGroup: group,
  }
}

/** The regular file a hard link (or a chain of them) points at, in the same layer. */
function linkRoot(e: TocEntry, layer: Map<string, TocEntry>): TocEntry {
  let cur = e
  for (let hops = 0; cur.type === 'hardlink' && hops < 64; hops++) {
    const next = layer.get(cur.linkName)
    if (next === undefined) break
    cur = next
  }
  if (cur.type !== 'file') {
    throw new FormatError(
      'TAR_HARDLINK_INVALID',
      'hard link target is not a regular file of its layer',
      { entry: e.path },
    )
  }
  return cur
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0
}

function implicitDir(path: string): FsEntry {
  return {
    path,
    type: 'directory',
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    mtimeNsec: 0,
    linkTarget: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
    blob: -1,
    offset: 0,
    hardlinkGroup: 0,
  }
}

/** The merged tree: entries by path, and each directory's children for subtree removal. */
class Tree {
  readonly #entries = new Map<string, FsEntry>()
  readonly #children = new Map<string, Set<string>>()

  has(path: string): boolean {
    return this.#entries.has(path)
  }

  put(entry: FsEntry): void {
    const old = this.#entries.get(entry.path)
    if (old !== undefined && !(old.type === 'directory' && entry.type === 'directory'))
      this.remove(entry.path)
    this.#entries.set(entry.path, entry)
    if (entry.path !== '') this.#childrenOf(parentOf(entry.path)).add(entry.path)
  }

  /** Whiteouts only ever remove entries; under a lower non-directory there is nothing to remove. */
  whiteout(path: string): void {
    const dir = parentOf(path)
    if (!this.#parentsAreDirectories(path)) return
    if (basename(path) === OPAQUE) {
      for (const child of [...(this.#children.get(dir) ?? [])]) this.remove(child)
    } else {
      this.remove(
        dir === ''
          ? basename(path).slice(WHITEOUT.length)
          : `${dir}/${basename(path).slice(WHITEOUT.length)}`,
      )
    }
  }

  /** Creates missing parents (umoci MkdirAll); refuses parents that are not directories. */
  ensureParents(path: string): void {
    this.#checkParents(path, path)
    for (let dir = parentOf(path); !this.#entries.has(dir); dir = parentOf(dir)) {
      this.put(implicitDir(dir))
      if (dir === '') break
    }
  }

  remove(path: string): void {
    if (!this.#entries.delete(path)) return
    for (const child of this.#children.get(path) ?? []) this.remove(child)
    this.#children.delete(path)
    if (path !== '') this.#children.get(parentOf(path))?.delete(path)
  }

  sorted(): FsEntry[] {
    return [...this.#entries.values()].sort(byPath)
  }

  #parentsAreDirectories(path: string): boolean {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const parent = this.#entries.get(path.slice(0, i))
      if (parent !== undefined && parent.type !== 'directory') return false
    }
    return true
  }

  #checkParents(path: string, entry: string): void {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const parent = this.#entries.get(path.slice(0, i))
      if (parent === undefined || parent.type === 'directory') continue
      if (parent.type === 'symlink') {
        throw new FormatError(
          'IMAGE_SYMLINK_ESCAPE',
          'a layer writes under a symlink of a lower layer',
          { entry },
        )
      }
      throw new FormatError(
        'IMAGE_PARENT_NOT_DIRECTORY',
        'a layer writes under a non-directory of a lower layer',
        { entry },
      )
    }
  }

  #childrenOf(dir: string): Set<string> {
    let set = this.#children.get(dir)
    if (set === undefined) this.#children.set(dir, (set = new Set()))
    return set
  }
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i === -1 ? '' : path.slice(0, i)
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}
