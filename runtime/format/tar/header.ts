/**
 * One tar entry's metadata after PAX, GNU long-name and global headers are folded in.
 * POSIX.1-2001 pax / ustar: https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html
 */
export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo'

export interface TarHeader {
  /** As written in the archive (not normalised). */
  name: string
  type: EntryType
  /** Permission bits with setuid/setgid/sticky (the low 12 bits of the tar mode). */
  mode: number
  uid: number
  gid: number
  /** Content bytes that follow the header (0 for everything but regular files). */
  size: number
  /** Seconds since the epoch (may be negative) and nanoseconds (0–999 999 999). */
  mtime: number
  mtimeNsec: number
  /** Symlink target or hard-link target path. */
  linkName: string
  uname: string
  gname: string
  devMajor: number
  devMinor: number
  /** Extended attributes by full name (`user.x`, `security.capability`). */
  xattrs: Map<string, Buffer>
}

export function emptyHeader(name: string, type: EntryType): TarHeader {
  return {
    name,
    type,
    mode: type === 'directory' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    mtimeNsec: 0,
    linkName: '',
    uname: '',
    gname: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
  }
}

/** ustar typeflag bytes (POSIX) and the GNU extensions thaw recognises. */
export const TYPEFLAG = {
  file: 0x30, // '0' (and NUL, and '7' contiguous, read as regular files)
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  directory: 0x35,
  fifo: 0x36,
  contiguous: 0x37,
  paxExtended: 0x78, // 'x'
  paxGlobal: 0x67, // 'g'
  gnuLongName: 0x4c, // 'L'
  gnuLongLink: 0x4b, // 'K'
  gnuSparse: 0x53, // 'S'
  gnuDumpDir: 0x44, // 'D'
  gnuMultiVolume: 0x4d, // 'M'
  gnuVolumeHeader: 0x56, // 'V'
} as const

export const BLOCK = 512
