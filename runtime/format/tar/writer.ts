import { checksum, octalMax, writeOctal, writeString } from './fields.ts'
import { BLOCK, TYPEFLAG, type TarHeader } from './header.ts'
import { encodePaxRecord, formatPaxTime } from './pax.ts'

/**
 * Deterministic tar output: a POSIX ustar header, preceded by a PAX `x` header only when a value
 * does not fit ustar (names or link targets over 100 bytes, sizes ≥ 8 GiB, ids ≥ 2^21, negative
 * or sub-second mtimes, long user/group names, xattrs). The same header always gives the same
 * bytes; `tar -t` (GNU or bsdtar) and archive/tar read it.
 */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK)

export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** The header blocks for `h` (content and its padding are the caller's to write). */
export function encodeTarHeader(h: TarHeader): Buffer {
  const name = h.type === 'directory' ? dirName(h.name) : h.name
  const pax = paxRecords(h, name)
  const main = ustarBlock(h, name)
  if (pax.length === 0) return main
  const body = Buffer.concat(pax)
  const paxHeader = ustarBlock(
    {
      ...h,
      type: 'file',
      size: body.length,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 0,
      mtimeNsec: 0,
      linkName: '',
      uname: '',
      gname: '',
    },
    `PaxHeaders/${basename(name)}`,
    TYPEFLAG.paxExtended,
  )
  return Buffer.concat([paxHeader, body, Buffer.alloc(paddingFor(body.length)), main])
}

function paxRecords(h: TarHeader, name: string): Buffer[] {
  const out: Buffer[] = []
  const add = (key: string, value: string | Buffer) =>
    out.push(encodePaxRecord(key, typeof value === 'string' ? Buffer.from(value, 'utf8') : value))
  if (Buffer.byteLength(name) > 100) add('path', name)
  if (Buffer.byteLength(h.linkName) > 100) add('linkpath', h.linkName)
  if (h.size > octalMax(12)) add('size', String(h.size))
  if (h.uid > octalMax(8)) add('uid', String(h.uid))
  if (h.gid > octalMax(8)) add('gid', String(h.gid))
  if (Buffer.byteLength(h.uname) > 32) add('uname', h.uname)
  if (Buffer.byteLength(h.gname) > 32) add('gname', h.gname)
  if (h.devMajor > octalMax(8)) add('SCHILY.devmajor', String(h.devMajor))
  if (h.devMinor > octalMax(8)) add('SCHILY.devminor', String(h.devMinor))
  if (h.mtimeNsec !== 0 || h.mtime < 0 || h.mtime > octalMax(12))
    add('mtime', formatPaxTime(h.mtime, h.mtimeNsec))
  for (const key of [...h.xattrs.keys()].sort()) add(`SCHILY.xattr.${key}`, h.xattrs.get(key)!)
  return out
}

const TYPE_BYTE: Record<TarHeader['type'], number> = {
  file: TYPEFLAG.file,
  hardlink: TYPEFLAG.hardlink,
  symlink: TYPEFLAG.symlink,
  char: TYPEFLAG.char,
  block: TYPEFLAG.block,
  directory: TYPEFLAG.directory,
  fifo: TYPEFLAG.fifo,
}

function ustarBlock(h: TarHeader, name: string, typeflag = TYPE_BYTE[h.type]): Buffer {
  const block = Buffer.alloc(BLOCK)
  writeString(block, 0, 100, name)
  writeOctal(block, 100, 8, h.mode & 0o7777)
  writeOctal(block, 108, 8, Math.min(h.uid, octalMax(8)))
  writeOctal(block, 116, 8, Math.min(h.gid, octalMax(8)))
  writeOctal(block, 124, 12, Math.min(h.size, octalMax(12)))
  writeOctal(block, 136, 12, Math.min(Math.max(h.mtime, 0), octalMax(12)))
  block[156] = typeflag
  writeString(block, 157, 100, h.linkName)
  writeString(block, 257, 8, 'ustar\x0000')
  writeString(block, 265, 32, h.uname)
  writeString(block, 297, 32, h.gname)
  writeOctal(block, 329, 8, Math.min(h.devMajor, octalMax(8)))
  writeOctal(block, 337, 8, Math.min(h.devMinor, octalMax(8)))
  writeOctal(block, 148, 7, checksum(block).unsigned)
  block[155] = 0x20
  return block
}

function dirName(name: string): string {
  if (name === '' || name === '.') return './'
  return name.endsWith('/') ? name : `${name}/`
}

function basename(name: string): string {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name
  return trimmed.slice(trimmed.lastIndexOf('/') + 1) || '.'
}
