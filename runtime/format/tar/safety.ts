import { FormatError } from '../errors.ts'
import type { EntryType, TarHeader } from './header.ts'

export interface TarSafetyOptions {
  /** Accept character and block devices (default false; char 0/0, the overlay whiteout, always passes). */
  allowDevices?: boolean
  /** Most entries in one layer (default 1 000 000). */
  maxEntries?: number
  /** Largest regular file (default 64 GiB). */
  maxFileSize?: number
  /** Longest path in bytes (default 4096, Linux PATH_MAX). */
  maxPathBytes?: number
  /** Largest xattr value (default 64 KiB, the Linux XATTR_SIZE_MAX). */
  maxXattrBytes?: number
}

/**
 * A tar path made relative and canonical: no leading `/` or `./`, no empty or `.` components,
 * no trailing slash; the root directory is `""`. Absolute paths and `..` are refused outright
 * (GNU tar strips the former and refuses neither by default; a converter must not guess).
 */
export function normalizeTarPath(raw: string, options: { maxPathBytes?: number } = {}): string {
  if (raw.includes('\0'))
    throw new FormatError('TAR_UNSAFE_PATH', 'path contains NUL', { entry: raw })
  if (raw.startsWith('/')) throw new FormatError('TAR_UNSAFE_PATH', 'absolute path', { entry: raw })
  const parts: string[] = []
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..')
      throw new FormatError('TAR_UNSAFE_PATH', 'path contains ".."', { entry: raw })
    if (Buffer.byteLength(part) > 255)
      throw new FormatError('TAR_NAME_TOO_LONG', 'a path component is over 255 bytes', {
        entry: raw,
      })
    parts.push(part)
  }
  const path = parts.join('/')
  if (Buffer.byteLength(path) > (options.maxPathBytes ?? 4096)) {
    throw new FormatError('TAR_NAME_TOO_LONG', 'path is longer than PATH_MAX', {
      entry: raw.slice(0, 200),
    })
  }
  return path
}

/**
 * Checks one layer's entries as they stream by, before anything is written for them. Refuses, with
 * the entry name: unsafe paths, entries under a symlink or a non-directory created earlier in the
 * same layer (`dir -> /etc` then `dir/passwd`), duplicates, hard links to anything but an earlier
 * regular file, devices unless allowed, and sizes over the limits. Symlink *targets* may be
 * absolute: the mount resolves them inside the image's root.
 */
export class TarSafety {
  readonly #options: Required<TarSafetyOptions>
  readonly #seen = new Map<string, EntryType>()

  constructor(options: TarSafetyOptions = {}) {
    this.#options = {
      allowDevices: options.allowDevices ?? false,
      maxEntries: options.maxEntries ?? 1_000_000,
      maxFileSize: options.maxFileSize ?? 64 * 2 ** 30,
      maxPathBytes: options.maxPathBytes ?? 4096,
      maxXattrBytes: options.maxXattrBytes ?? 64 * 1024,
    }
  }

  /** Returns the entry's normalised path (and normalises a hard link's target in `h.linkName`). */
  check(h: TarHeader): string {
    const path = normalizeTarPath(h.name, this.#options)
    if (this.#seen.size >= this.#options.maxEntries) {
      throw new FormatError(
        'TAR_TOO_MANY_ENTRIES',
        `more than ${this.#options.maxEntries} entries`,
        { entry: h.name },
      )
    }
    if (path === '' && h.type !== 'directory')
      throw new FormatError('TAR_UNSAFE_PATH', 'the root is not a directory', { entry: h.name })
    if (this.#seen.has(path))
      throw new FormatError('TAR_DUPLICATE_ENTRY', 'the layer has this path twice', {
        entry: h.name,
      })
    this.#checkParents(path, h.name, isWhiteout(path))
    this.#checkWhiteout(path, h.name)
    this.#checkContent(h)
    if (h.type === 'hardlink') h.linkName = this.#hardlinkTarget(h)
    this.#seen.set(path, h.type === 'hardlink' ? 'file' : h.type)
    return path
  }

  /**
   * umoci writes whiteouts for the old children of a directory it replaced by a file in the same
   * layer (`f`, then `f/.wh.x`); unpackers treat them as no-ops (ENOTDIR), so they pass here.
   */
  #checkParents(path: string, entry: string, whiteout: boolean): void {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const type = this.#seen.get(path.slice(0, i))
      if (type === 'symlink')
        throw new FormatError('TAR_SYMLINK_ESCAPE', 'path goes through a symlink of this layer', {
          entry,
        })
      if (type !== undefined && type !== 'directory' && !whiteout) {
        throw new FormatError(
          'TAR_PARENT_NOT_DIRECTORY',
          'path goes through a non-directory of this layer',
          { entry },
        )
      }
    }
  }

  #checkWhiteout(path: string, entry: string): void {
    const base = path.slice(path.lastIndexOf('/') + 1)
    if (!base.startsWith('.wh.') || base === '.wh..wh..opq') return
    const target = base.slice(4)
    if (target === '' || target === '.' || target === '..') {
      throw new FormatError('TAR_UNSAFE_PATH', 'whiteout of an invalid name', { entry })
    }
  }

  #checkContent(h: TarHeader): void {
    const o = this.#options
    if (h.size > o.maxFileSize)
      throw new FormatError('TAR_FILE_TOO_LARGE', `file over ${o.maxFileSize} bytes`, {
        entry: h.name,
      })
    if (
      (h.type === 'char' || h.type === 'block') &&
      !o.allowDevices &&
      !(h.type === 'char' && h.devMajor === 0 && h.devMinor === 0)
    ) {
      throw new FormatError(
        'TAR_DEVICE_NOT_ALLOWED',
        `${h.type} device ${h.devMajor}:${h.devMinor} (devices are not allowed)`,
        { entry: h.name },
      )
    }
    for (const [key, value] of h.xattrs) {
      if (value.length > o.maxXattrBytes || Buffer.byteLength(key) > 255) {
        throw new FormatError('TAR_HEADER_TOO_LARGE', `xattr ${key.slice(0, 64)} is too large`, {
          entry: h.name,
        })
      }
    }
    if (
      h.type === 'symlink' &&
      (h.linkName === '' || Buffer.byteLength(h.linkName) > o.maxPathBytes)
    ) {
      throw new FormatError('TAR_UNSAFE_PATH', 'symlink target is empty or longer than PATH_MAX', {
        entry: h.name,
      })
    }
  }

  #hardlinkTarget(h: TarHeader): string {
    let target: string
    try {
      target = normalizeTarPath(h.linkName, this.#options)
    } catch (err) {
      throw new FormatError(
        'TAR_HARDLINK_INVALID',
        `hard link target ${JSON.stringify(h.linkName)} is unsafe`,
        { entry: h.name, cause: err },
      )
    }
    if (this.#seen.get(target) !== 'file') {
      throw new FormatError(
        'TAR_HARDLINK_INVALID',
        `hard link target ${JSON.stringify(h.linkName)} is not an earlier regular file`,
        { entry: h.name },
      )
    }
    return target
  }
}

function isWhiteout(path: string): boolean {
  return path.slice(path.lastIndexOf('/') + 1).startsWith('.wh.')
}
