import type { Digest } from '../oci/digest.ts'
import { createCodec, type Codec } from './codec/codec.ts'
import { FrameCache } from './frame-cache.ts'
import { FrameFetcher, framesFor, type FrameSpan } from './frame-fetcher.ts'
import type { FsEntry, FsIndex } from './fs-index.ts'
import { FsTree, type FsNode } from './fs-tree.ts'

export type { FrameSpan } from './frame-fetcher.ts'
export type { FsNode } from './fs-tree.ts'

/** A streaming blob as the range source is asked for it: its place in the index, digest and size. */
export interface BlobRef {
  index: number
  digest: Digest
  size: number
}

/** Where compressed bytes come from (an HTTP range client, a local cache, a file). */
export interface RangeSource {
  /** Exactly `length` bytes of the blob from `offset` (fewer or more is a truncated frame). */
  read(blob: BlobRef, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>
}

export interface ImageReader {
  readonly index: FsIndex
  readonly codec: Codec
  /** The entry at `path` (`/a/b` or `a/b`), never following symlinks; undefined when absent. */
  lookup(path: string): FsNode | undefined
  /** Names in a directory, sorted (ENTRY_NOT_FOUND, ENTRY_WRONG_TYPE). */
  readdir(path: string): string[]
  readlink(path: string): string
  /** Up to `length` bytes of a regular file from `offset` (fewer at its end), verified. */
  read(path: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>
  readEntry(entry: FsEntry, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>
  /** The frames holding a byte range of a file (undefined when the range is empty). */
  framesFor(entry: FsEntry, offset: number, length: number): FrameSpan | undefined
  /** Drops cached frames. Idempotent. */
  close(): void
}

export interface OpenImageOptions {
  /** Bytes of decoded frames kept in memory (default 64 MiB). */
  cacheBytes?: number
}

/**
 * Opens an image through its (already verified) index: metadata is answered from memory; content
 * reads fetch, verify, decode and slice the frames they need (see README.md "How a read is
 * resolved"). A frame that fails verification is an error (`FRAME_*`), never data, and is not cached.
 */
export function openImage(
  index: FsIndex,
  source: RangeSource,
  options: OpenImageOptions = {},
): ImageReader {
  const codec = createCodec(index.codec)
  const tree = new FsTree(index)
  const cache = new FrameCache(options.cacheBytes)
  const fetcher = new FrameFetcher(index, codec, source, cache)
  return {
    index,
    codec,
    lookup: (path) => tree.lookup(path),
    readdir: (path) => tree.readdir(path),
    readlink: (path) => tree.get(path, 'symlink').linkTarget,
    read: async (path, offset, length, signal) =>
      fetcher.read(tree.get(path, 'file'), offset, length, signal),
    readEntry: (entry, offset, length, signal) => fetcher.read(entry, offset, length, signal),
    framesFor: (entry, offset, length) => framesFor(index, entry, offset, length),
    close: () => cache.clear(),
  }
}
