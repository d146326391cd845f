import type { Digest } from '../oci/digest.ts'
import type { CodecName } from './codec/codec.ts'
import type { Frame } from './frame.ts'

/** Entry types of the merged filesystem (hard links are regular files sharing an inode). */
export type FsEntryType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo'

/** One path of the image's merged root filesystem. */
export interface FsEntry {
  /** Relative, canonical (`usr/bin/env`); `""` is the root directory. */
  path: string
  type: FsEntryType
  /** Permission bits with setuid/setgid/sticky. */
  mode: number
  uid: number
  gid: number
  /** Content length of a regular file; 0 otherwise. */
  size: number
  mtime: number
  mtimeNsec: number
  /** Symlink target, as stored (may be absolute: resolved inside the image by the mount). */
  linkTarget: string
  devMajor: number
  devMinor: number
  xattrs: ReadonlyMap<string, Buffer>
  /** Which streaming blob holds the content (index in `FsIndex.blobs`), -1 for no content. */
  blob: number
  /** Uncompressed offset of the content in that blob's tar stream. */
  offset: number
  /** Entries with the same group > 0 are hard links of one inode; 0 for none. */
  hardlinkGroup: number
}

/** One streaming blob (one per original layer, in layer order). */
export interface FsBlob {
  digest: Digest
  size: number
  /** Length of its decoded tar stream. */
  tarSize: number
  /** The original layer's DiffID (sha256 of its uncompressed tar). */
  diffId: Digest
  /** Compressed offset where the profiled part ends (0: none). */
  prefetchEnd: number
  /** Contiguous: frame i+1 starts where frame i ends, in both coordinates. */
  frames: Frame[]
}

/** The image's filesystem index: what the index blob (README.md "Index blob") holds. */
export interface FsIndex {
  version: 1
  codec: CodecName
  blobs: FsBlob[]
  /** Sorted by path; parents always present. */
  entries: FsEntry[]
}
