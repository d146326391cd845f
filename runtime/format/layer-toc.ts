import type { Digest } from '../oci/digest.ts'
import type { CodecName } from './codec/codec.ts'
import type { Frame } from './frame.ts'
import type { EntryType } from './tar/header.ts'

/**
 * One entry of a converted layer, in blob order. Like an eStargz TOCEntry (formats.md §1.2) but
 * with one `offset` into the blob's *uncompressed* tar stream: the frames table maps it to bytes.
 */
export interface TocEntry {
  /** Normalised: relative, no `./`, no trailing slash; `""` is the root directory. */
  path: string
  type: EntryType
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  mtimeNsec: number
  /** Symlink target as written; for a hard link, the normalised path of its target entry. */
  linkName: string
  uname: string
  gname: string
  devMajor: number
  devMinor: number
  xattrs: Map<string, Buffer>
  /** Uncompressed offset of the content in the blob's tar stream (regular files; else the header's end). */
  offset: number
}

/** What the Writer returns for one layer: everything the image index needs, nothing else. */
export interface LayerToc {
  codec: CodecName
  /** The streaming blob as written to the sink. */
  blob: { digest: Digest; size: number }
  /** sha256 of the *original* uncompressed tar: compare with the image config's rootfs.diff_ids. */
  diffId: Digest
  /** Length of the blob's decoded tar stream. */
  tarSize: number
  frames: Frame[]
  /** Compressed offset where the ordered (profiled) part ends, on a frame boundary; 0 without an order. */
  prefetchEnd: number
  entries: TocEntry[]
}
