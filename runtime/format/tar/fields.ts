import { FormatError } from '../errors.ts'

/**
 * Numeric and string fields of a 512-byte ustar header block:
 *
 *   off size field        off size field
 *     0  100 name          257    6 magic ("ustar\0" POSIX, "ustar " + " \0" GNU)
 *   100    8 mode          263    2 version
 *   108    8 uid           265   32 uname
 *   116    8 gid           297   32 gname
 *   124   12 size          329    8 devmajor
 *   136   12 mtime         337    8 devminor
 *   148    8 chksum        345  155 prefix (POSIX only; GNU keeps atime/ctime there)
 *   156    1 typeflag      500   12 padding
 *   157  100 linkname
 *
 * Numbers are octal ASCII, or GNU base-256 (first byte has bit 7 set) for values that do not fit.
 */
export function readString(block: Uint8Array, offset: number, length: number): string {
  const end = block.indexOf(0, offset)
  const stop = end === -1 || end > offset + length ? offset + length : end
  return Buffer.from(block.buffer, block.byteOffset + offset, stop - offset).toString('utf8')
}

export function readNumber(
  block: Uint8Array,
  offset: number,
  length: number,
  what: string,
): number {
  const first = block[offset]!
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement over the field; bit 7 of byte 0 is the marker
    // (archive/tar parseNumeric does the same).
    const inv = first & 0x40 ? 0xff : 0
    let value = 0
    for (let i = 0; i < length; i++) {
      let c = block[offset + i]! ^ inv
      if (i === 0) c &= 0x7f
      value = value * 256 + c
    }
    if (!Number.isSafeInteger(value))
      throw new FormatError('TAR_HEADER_INVALID', `${what} is too large`)
    return inv ? -(value + 1) : value
  }
  let value = 0
  let seen = false
  for (let i = offset; i < offset + length; i++) {
    const c = block[i]!
    if (c === 0 || (c === 0x20 && seen)) break
    if (c === 0x20) continue
    if (c < 0x30 || c > 0x37)
      throw new FormatError('TAR_HEADER_INVALID', `${what} is not an octal number`)
    value = value * 8 + (c - 0x30)
    seen = true
  }
  return value
}

export function writeString(
  block: Uint8Array,
  offset: number,
  length: number,
  value: string,
): void {
  const bytes = Buffer.from(value, 'utf8')
  block.set(bytes.subarray(0, length), offset)
}

/** Octal, zero-padded, NUL-terminated; the caller guarantees it fits (else it uses PAX). */
export function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0')
  writeString(block, offset, length - 1, text)
  block[offset + length - 1] = 0
}

/** The largest value an octal field of `length` bytes holds (length - 1 digits). */
export function octalMax(length: number): number {
  return 8 ** (length - 1) - 1
}

/** Header checksum: the byte sum with the checksum field read as eight spaces. */
export function checksum(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return { unsigned, signed }
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < 512; i += 8) {
    if (block[i] || block[i + 1] || block[i + 2] || block[i + 3]) return false
    if (block[i + 4] || block[i + 5] || block[i + 6] || block[i + 7]) return false
  }
  return true
}
