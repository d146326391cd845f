import { FormatError } from './errors.ts'
import type { CodecName } from './codec/codec.ts'
import type { FsBlob, FsEntry, FsIndex } from './fs-index.ts'
import type { IndexTree } from './index-tree.ts'
import { parentOf } from './image-index.ts'

/** An entry with what a filesystem reports besides the index: inode number and link count. */
export interface FsNode extends FsEntry {
  /** 1 for the root, then index order; hard links share their group's first inode. */
  ino: number
  /** Hard-link group size for files; 2 + subdirectories for directories. */
  nlink: number
}

/**
 * The JSON index's entries by path, with inode numbers, link counts and directory listings: the
 * IndexTree of an index parsed whole (BinaryIndex is the other, read in place).
 */
export class FsTree implements IndexTree {
  readonly codec: CodecName
  readonly blobs: readonly FsBlob[]
  readonly entryCount: number
  readonly totalBytes: number
  readonly #nodes = new Map<string, FsNode>()
  readonly #children = new Map<string, string[]>()
  /** By inode number; a hard-link group's inode is its first entry. */
  readonly #byIno: FsNode[] = []

  constructor(index: FsIndex) {
    this.codec = index.codec
    this.blobs = index.blobs
    this.entryCount = index.entries.length
    this.totalBytes = index.entries.reduce((n, e) => n + e.size, 0)
    const groupIno = new Map<number, number>()
    const groupCount = new Map<number, number>()
    index.entries.forEach((e, i) => {
      let ino = i + 1
      if (e.hardlinkGroup > 0) {
        ino = groupIno.get(e.hardlinkGroup) ?? ino
        groupIno.set(e.hardlinkGroup, ino)
        groupCount.set(e.hardlinkGroup, (groupCount.get(e.hardlinkGroup) ?? 0) + 1)
      }
      const node = nodeOf(e, ino)
      this.#nodes.set(e.path, node)
      this.#byIno[ino] ??= node
      if (e.type === 'directory') this.#children.set(e.path, [])
      if (e.path !== '')
        this.#children.get(parentOf(e.path))!.push(e.path.slice(e.path.lastIndexOf('/') + 1))
    })
    for (const node of this.#nodes.values()) {
      if (node.hardlinkGroup > 0) node.nlink = groupCount.get(node.hardlinkGroup)!
      if (node.type === 'directory' && node.path !== '')
        this.#nodes.get(parentOf(node.path))!.nlink++
    }
  }

  /** `/a/b`, `a/b/` and `a//b` name the same entry; no symlink is followed. */
  lookup(path: string): FsNode | undefined {
    return this.#nodes.get(canonical(path))
  }

  /** The entry with this inode number (1 is the root). */
  node(ino: number): FsNode | undefined {
    return this.#byIno[ino]
  }

  /** The entry `name` in the directory `dir`. */
  child(dir: FsNode, name: string): FsNode | undefined {
    return this.#nodes.get(dir.path === '' ? name : `${dir.path}/${name}`)
  }

  /** The entry, or ENTRY_NOT_FOUND / ENTRY_WRONG_TYPE. */
  get(path: string, type?: FsEntry['type']): FsNode {
    const node = this.lookup(path)
    if (node === undefined)
      throw new FormatError('ENTRY_NOT_FOUND', 'no such entry', { entry: path })
    if (type !== undefined && node.type !== type) {
      throw new FormatError('ENTRY_WRONG_TYPE', `not a ${type}`, { entry: path })
    }
    return node
  }

  /** Names in a directory, sorted (entries are sorted by path). */
  readdir(path: string): string[] {
    return [...this.children(this.get(path, 'directory'))]
  }

  /** Names in a directory node, sorted; not to be modified. */
  children(dir: FsNode): readonly string[] {
    return this.#children.get(dir.path) ?? []
  }
}

/**
 * The entry with its inode fields, written out field by field: `{ ...e, ino, nlink }` costs about
 * 4 µs per entry on V8 here (0.2 s for a 50 000-entry image), this about 0.2 µs.
 */
function nodeOf(e: FsEntry, ino: number): FsNode {
  return {
    path: e.path,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: e.mtime,
    mtimeNsec: e.mtimeNsec,
    linkTarget: e.linkTarget,
    devMajor: e.devMajor,
    devMinor: e.devMinor,
    xattrs: e.xattrs,
    blob: e.blob,
    offset: e.offset,
    hardlinkGroup: e.hardlinkGroup,
    ino,
    nlink: e.type === 'directory' ? 2 : 1,
  }
}

function canonical(path: string): string {
  if (!path.includes('//') && !path.startsWith('/') && !path.endsWith('/') && !path.includes('./'))
    return path
  return path
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/')
}
