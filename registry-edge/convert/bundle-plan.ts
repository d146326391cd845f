import type { BundleHeader, BundleRecord } from '../../runtime/artifact/index.ts'
import { FsTree, framesFor, type FsIndex } from '../../runtime/format/index.ts'
import type { Descriptor, Digest } from '../../runtime/oci/index.ts'
import type { Profile } from '../../runtime/profile/index.ts'

/** Largest run of frames in one record (a frame larger than this is a record of its own). */
export const BUNDLE_RUN_BYTES = 1024 * 1024

/**
 * The records of a prefetch bundle (runtime/artifact/bundle.ts): record 0 is the whole index blob;
 * then every frame holding a profiled byte range (a whole file when the entry has no ranges), in
 * the profile's first-access order, each frame once, adjacent frames of one blob merged into runs
 * of at most BUNDLE_RUN_BYTES. Paths that are not regular files of the image are skipped.
 * Deterministic: the same index and profile always give the same header.
 */
export function planBundle(input: {
  artifact: Digest
  profile: Digest
  indexBlob: Descriptor
  index: FsIndex
  merged: Profile
}): BundleHeader {
  const { index } = input
  const tree = new FsTree(index)
  const seen = new Set<string>()
  const records: BundleRecord[] = [
    { blob: input.indexBlob.digest, offset: 0, length: input.indexBlob.size },
  ]
  let run: (BundleRecord & { blobIndex: number; last: number }) | undefined
  const flush = () => {
    if (run) records.push({ blob: run.blob, offset: run.offset, length: run.length })
    run = undefined
  }
  for (const entry of input.merged.entries) {
    const node = tree.lookup(entry.path)
    if (node?.type !== 'file' || node.size === 0) continue
    const ranges = entry.ranges.length > 0 ? entry.ranges : [[0, node.size] as [number, number]]
    for (const [offset, length] of ranges) {
      const span = framesFor(index, node, offset, length)
      if (!span) continue
      const blob = index.blobs[span.blob]!
      for (let i = span.first; i <= span.last; i++) {
        const key = `${span.blob}:${i}`
        if (seen.has(key)) continue
        seen.add(key)
        const frame = blob.frames[i]!
        const extends_ =
          run &&
          run.blobIndex === span.blob &&
          run.last === i - 1 &&
          run.length + frame.clen <= BUNDLE_RUN_BYTES
        if (extends_) {
          run!.length += frame.clen
          run!.last = i
        } else {
          flush()
          run = {
            blob: blob.digest,
            offset: frame.coff,
            length: frame.clen,
            blobIndex: span.blob,
            last: i,
          }
        }
      }
    }
  }
  flush()
  return { version: 1, artifact: input.artifact, profile: input.profile, records }
}
