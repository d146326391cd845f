import { FormatError } from './errors.ts'
import type { FsIndex } from './fs-index.ts'
import { parentOf } from './image-index.ts'

/**
 * The checks a parsed index must pass before a reader trusts it: blobs' frames are contiguous and
 * add up to the blob's sizes, every file's content lies inside its blob's tar stream, entries are
 * sorted canonical paths whose parents are directories, and each type has what it needs.
 */
export function checkFsIndex(index: FsIndex): void {
  for (const [i, b] of index.blobs.entries()) {
    let clen = 0
    let ulen = 0
    const starts = new Set<number>([0])
    for (const f of b.frames) {
      clen += f.clen
      ulen += f.ulen
      starts.add(clen)
    }
    if (clen !== b.size)
      throw outside(`blob ${i}: frames cover ${clen} compressed bytes, the blob has ${b.size}`)
    if (ulen !== b.tarSize)
      throw outside(`blob ${i}: frames cover ${ulen} tar bytes, the blob has ${b.tarSize}`)
    if (!starts.has(b.prefetchEnd))
      throw outside(`blob ${i}: prefetchEnd ${b.prefetchEnd} is not a frame boundary`)
  }
  const dirs = new Set<string>()
  let previous: string | undefined
  for (const e of index.entries) {
    if (previous === undefined ? e.path !== '' : e.path <= previous)
      throw invalid('entries are not sorted, unique and rooted', e.path)
    previous = e.path
    if (e.path !== '' && !isCanonical(e.path)) throw invalid('path is not canonical', e.path)
    if (e.path === '' ? e.type !== 'directory' : !dirs.has(parentOf(e.path)))
      throw invalid('parent is not a directory', e.path)
    if (e.type === 'directory') dirs.add(e.path)
    if (e.type === 'symlink' && e.linkTarget === '') throw invalid('symlink without target', e.path)
    if (e.type !== 'file' && e.size !== 0) throw invalid('only regular files have a size', e.path)
    if (e.type === 'file' && e.size > 0) {
      const blob = index.blobs[e.blob]
      if (blob === undefined)
        throw outside(
          `entry ${JSON.stringify(e.path)} names blob ${e.blob} of ${index.blobs.length}`,
        )
      if (e.offset + e.size > blob.tarSize)
        throw outside(
          `entry ${JSON.stringify(e.path)} ends at ${e.offset + e.size}, past its blob's ${blob.tarSize}`,
        )
    } else if (e.blob !== -1) throw invalid('entry without content names a blob', e.path)
  }
}

/** No empty, `.` or `..` component and no NUL: checked without splitting (50 000 paths per load). */
function isCanonical(path: string): boolean {
  if (path.startsWith('/') || path.endsWith('/') || path.includes('//') || path.includes('\0'))
    return false
  if (path === '.' || path === '..' || path.startsWith('./') || path.startsWith('../')) return false
  return !(
    path.endsWith('/.') ||
    path.endsWith('/..') ||
    path.includes('/./') ||
    path.includes('/../')
  )
}

const invalid = (message: string, path: string) =>
  new FormatError('INDEX_INVALID', message, { entry: path })
const outside = (message: string) => new FormatError('INDEX_OUT_OF_BOUNDS', message)
