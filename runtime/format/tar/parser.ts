import { FormatError } from '../errors.ts'
import { checksum, isZeroBlock, readNumber, readString } from './fields.ts'
import { BLOCK, TYPEFLAG, emptyHeader, type EntryType, type TarHeader } from './header.ts'
import { parsePax, parsePaxTime, type PaxRecords } from './pax.ts'

/** Receives a tar stream's entries in order: `entry`, then `data` slices totalling `size`, then `end`. */
export interface TarHandler {
  entry(header: TarHeader): void
  /** A slice of the input chunk; valid only during the call (copy it to keep it). */
  data(bytes: Uint8Array): void
  entryEnd(): void
}

export interface TarParserOptions {
  /** Largest PAX or GNU long-name header accepted (default 1 MiB): more is `TAR_HEADER_TOO_LARGE`. */
  maxMetaBytes?: number
}

const TYPES: Record<number, EntryType> = {
  0: 'file',
  [TYPEFLAG.file]: 'file',
  [TYPEFLAG.contiguous]: 'file',
  [TYPEFLAG.hardlink]: 'hardlink',
  [TYPEFLAG.symlink]: 'symlink',
  [TYPEFLAG.char]: 'char',
  [TYPEFLAG.block]: 'block',
  [TYPEFLAG.directory]: 'directory',
  [TYPEFLAG.fifo]: 'fifo',
}

const META = new Set<number>([
  TYPEFLAG.paxExtended,
  TYPEFLAG.paxGlobal,
  TYPEFLAG.gnuLongName,
  TYPEFLAG.gnuLongLink,
])

/**
 * A synchronous, push-driven tar reader: feed it chunks of any size with `write`, then `end`.
 * It understands ustar, GNU (`L`/`K` long names, base-256 numbers) and PAX (`x`, `g`), folds them
 * into one `TarHeader` per entry, and refuses what it cannot represent faithfully (sparse files,
 * multi-volume archives) with a reason. It never copies file content: `data` gets input slices.
 */
export class TarParser {
  readonly #handler: TarHandler
  readonly #maxMeta: number
  readonly #block = Buffer.alloc(BLOCK)
  #blockFill = 0
  #state: 'header' | 'meta' | 'data' | 'padding' | 'done' = 'header'
  #remaining = 0
  #padding = 0
  #metaType = 0
  #meta: Buffer[] = []
  #metaFill = 0
  #global: PaxRecords = new Map()
  #pax: PaxRecords | undefined
  #longName: string | undefined
  #longLink: string | undefined
  #zeroBlocks = 0
  #entries = 0

  constructor(handler: TarHandler, options: TarParserOptions = {}) {
    this.#handler = handler
    this.#maxMeta = options.maxMetaBytes ?? 1 << 20
  }

  get done(): boolean {
    return this.#state === 'done'
  }

  write(chunk: Uint8Array): void {
    let pos = 0
    while (pos < chunk.length && this.#state !== 'done') {
      if (this.#state === 'header') {
        const take = Math.min(BLOCK - this.#blockFill, chunk.length - pos)
        this.#block.set(chunk.subarray(pos, pos + take), this.#blockFill)
        this.#blockFill += take
        pos += take
        if (this.#blockFill === BLOCK) {
          this.#blockFill = 0
          this.#onHeaderBlock()
        }
      } else if (this.#state === 'data' || this.#state === 'meta') {
        const take = Math.min(this.#remaining, chunk.length - pos)
        const slice = chunk.subarray(pos, pos + take)
        if (this.#state === 'data') this.#handler.data(slice)
        else this.#meta.push(Buffer.from(slice))
        this.#remaining -= take
        pos += take
        if (this.#remaining === 0) this.#afterContent()
      } else {
        const take = Math.min(this.#padding, chunk.length - pos)
        this.#padding -= take
        pos += take
        if (this.#padding === 0) this.#state = 'header'
      }
    }
  }

  /** The input ended: fails with `TAR_TRUNCATED` unless the archive was complete. */
  end(): void {
    if (this.#state === 'done') return
    // One zero block then EOF is accepted, as GNU tar does (with a warning).
    if (
      this.#state === 'header' &&
      this.#blockFill === 0 &&
      (this.#zeroBlocks > 0 || this.#entries === 0)
    ) {
      this.#state = 'done'
      return
    }
    throw new FormatError(
      'TAR_TRUNCATED',
      'the tar stream ends in the middle of an entry or without its end blocks',
    )
  }

  #onHeaderBlock(): void {
    const block = this.#block
    if (isZeroBlock(block)) {
      if (++this.#zeroBlocks === 2) this.#state = 'done'
      return
    }
    if (this.#zeroBlocks > 0)
      throw new FormatError('TAR_HEADER_INVALID', 'an entry follows an end-of-archive block')
    const stored = readNumber(block, 148, 8, 'checksum')
    const sum = checksum(block)
    if (stored !== sum.unsigned && stored !== sum.signed) {
      throw new FormatError('TAR_HEADER_INVALID', 'header checksum mismatch', {
        entry: readString(block, 0, 100),
      })
    }
    const flag = block[156]!
    const size = readNumber(block, 124, 12, 'size')
    if (META.has(flag)) return this.#startMeta(flag, size)
    const type = TYPES[flag]
    const rawName = this.#longName ?? this.#ustarName(block)
    if (type === undefined) throw unsupported(flag, rawName)
    this.#emit(this.#header(block, type, rawName, size))
  }

  #startMeta(flag: number, size: number): void {
    if (size > this.#maxMeta) {
      throw new FormatError(
        'TAR_HEADER_TOO_LARGE',
        `extended header of ${size} bytes (limit ${this.#maxMeta})`,
      )
    }
    this.#metaType = flag
    this.#meta = []
    this.#remaining = size
    this.#padding = (BLOCK - (size % BLOCK)) % BLOCK
    this.#state = 'meta'
    if (size === 0) this.#afterContent()
  }

  #afterContent(): void {
    if (this.#state === 'meta') this.#finishMeta()
    else this.#handler.entryEnd()
    this.#state = this.#padding > 0 ? 'padding' : 'header'
  }

  #finishMeta(): void {
    const data = Buffer.concat(this.#meta)
    this.#meta = []
    const flag = this.#metaType
    if (flag === TYPEFLAG.gnuLongName) this.#longName = cString(data)
    else if (flag === TYPEFLAG.gnuLongLink) this.#longLink = cString(data)
    else {
      const records = parsePax(data, this.#longName ?? '')
      if (flag === TYPEFLAG.paxGlobal) for (const [k, v] of records) this.#global.set(k, v)
      else this.#pax = new Map([...(this.#pax ?? []), ...records])
    }
  }

  #ustarName(block: Buffer): string {
    const name = readString(block, 0, 100)
    // POSIX ustar ("ustar\0") joins prefix/name; GNU ("ustar  \0") keeps other data in the prefix.
    const posix = block[257] === 0x75 && block.toString('latin1', 257, 263) === 'ustar\0'
    const prefix = posix ? readString(block, 345, 155) : ''
    return prefix === '' ? name : `${prefix}/${name}`
  }

  #header(block: Buffer, type: EntryType, rawName: string, size: number): TarHeader {
    const h = emptyHeader(rawName, type)
    h.mode = readNumber(block, 100, 8, 'mode') & 0o7777
    h.uid = readNumber(block, 108, 8, 'uid')
    h.gid = readNumber(block, 116, 8, 'gid')
    h.size = size
    h.mtime = readNumber(block, 136, 12, 'mtime')
    h.linkName = this.#longLink ?? readString(block, 157, 100)
    h.uname = readString(block, 265, 32)
    h.gname = readString(block, 297, 32)
    if (type === 'char' || type === 'block') {
      h.devMajor = readNumber(block, 329, 8, 'devmajor')
      h.devMinor = readNumber(block, 337, 8, 'devminor')
    }
    applyPax(h, this.#global)
    if (this.#pax) applyPax(h, this.#pax)
    // Header-only types carry no content whatever their size field says (archive/tar does the same).
    if (h.type !== 'file') h.size = 0
    return h
  }

  #emit(h: TarHeader): void {
    const contentSize = h.size
    this.#longName = this.#longLink = this.#pax = undefined
    this.#entries++
    this.#handler.entry(h)
    this.#remaining = contentSize
    this.#padding = (BLOCK - (contentSize % BLOCK)) % BLOCK
    this.#state = 'data'
    if (contentSize === 0) this.#afterContent()
  }
}

function applyPax(h: TarHeader, records: PaxRecords): void {
  for (const [key, raw] of records) {
    const value = () => raw.toString('utf8')
    const int = () => {
      const n = Number(value())
      if (!Number.isSafeInteger(n) || n < 0)
        throw new FormatError('TAR_HEADER_INVALID', `bad PAX ${key}`, { entry: h.name })
      return n
    }
    if (key === 'path') h.name = value()
    else if (key === 'linkpath') h.linkName = value()
    else if (key === 'size') h.size = int()
    else if (key === 'uid') h.uid = int()
    else if (key === 'gid') h.gid = int()
    else if (key === 'uname') h.uname = value()
    else if (key === 'gname') h.gname = value()
    else if (key === 'SCHILY.devmajor') h.devMajor = int()
    else if (key === 'SCHILY.devminor') h.devMinor = int()
    else if (key === 'mtime') ({ sec: h.mtime, nsec: h.mtimeNsec } = parsePaxTime(value(), h.name))
    else if (key.startsWith('SCHILY.xattr.')) h.xattrs.set(key.slice(13), raw)
    else if (key.startsWith('LIBARCHIVE.xattr.')) {
      h.xattrs.set(decodeURIComponent(key.slice(17)), Buffer.from(value(), 'base64'))
    } else if (key.startsWith('GNU.sparse.')) {
      throw new FormatError(
        'TAR_UNSUPPORTED_ENTRY',
        'sparse files (GNU.sparse PAX) are not supported',
        { entry: h.name },
      )
    }
    // Others (atime, ctime, charset, comment, SCHILY.fflags…) carry nothing a rootfs keeps.
  }
}

function unsupported(flag: number, name: string): FormatError {
  const what: Record<number, string> = {
    [TYPEFLAG.gnuSparse]: 'GNU sparse files are not supported',
    [TYPEFLAG.gnuDumpDir]: 'GNU incremental dump directories are not supported',
    [TYPEFLAG.gnuMultiVolume]: 'multi-volume archives are not supported',
    [TYPEFLAG.gnuVolumeHeader]: 'volume headers are not supported',
  }
  const reason = what[flag] ?? `unknown entry type ${JSON.stringify(String.fromCharCode(flag))}`
  return new FormatError('TAR_UNSUPPORTED_ENTRY', reason, { entry: name })
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0)
  return data.toString('utf8', 0, nul === -1 ? data.length : nul)
}
