import type { CodecName } from './codec/codec.ts'
import type { FsBlob } from './fs-index.ts'
import type { FsNode } from './fs-tree.ts'

/**
 * An image's filesystem as a mount reads it: the blobs and their frames in full, entries by
 * inode number or by name. Two implementations: FsTree over a parsed JSON index (FsIndex), and
 * BinaryIndex over the binary index blob, read in place without parsing it whole.
 */
export interface IndexTree {
  readonly codec: CodecName
  readonly blobs: readonly FsBlob[]
  readonly entryCount: number
  /** Sum of regular files' sizes (statfs). */
  readonly totalBytes: number
  /** The entry with this inode number (1 is the root). */
  node(ino: number): FsNode | undefined
  /** The entry `name` in the directory `dir`. */
  child(dir: FsNode, name: string): FsNode | undefined
  /** Names in a directory, sorted; not to be modified. */
  children(dir: FsNode): readonly string[]
  /** `/a/b`, `a/b/` and `a//b` name the same entry; no symlink is followed. */
  lookup(path: string): FsNode | undefined
}
