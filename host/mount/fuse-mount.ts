import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { FsError, MountError, type FsErrorCode } from './errors.ts'
import type { FsStat, ImageFs } from './image-fs.ts'

/**
 * The FUSE adapter: the only file that knows fuse-native (libfuse 2, high-level API) and errno
 * values. It answers every operation from ImageFs; everything that would write is EROFS.
 *
 * Options (formats.md §7, §8.9): the content is immutable, so the kernel may keep it:
 * `kernel_cache` (page cache survives reopen; a second read costs ~2 µs instead of ~100 µs),
 * entry/attr timeouts of an hour, and `negative_timeout` so misses (module resolution probes)
 * are cached too; fuse-native does not expose `negative_timeout`, `use_ino` or `ro`, so they ride
 * in `fsname` (it joins options with commas: §7.1). `use_ino` makes st_ino ours (hard links show
 * one inode). `timeout: false`: a slow remote read must not turn into ETIMEDOUT after 15 s.
 * Timestamps cross fuse-native in milliseconds (its stat layout), so sub-millisecond mtimes are
 * truncated. Operations with nothing to answer (release, flush, opendir, releasedir) are not
 * implemented, so libfuse answers them in C without a round trip to this thread (~50 µs each on
 * this VM kind).
 */
interface FuseNative {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}
type FuseCtor = {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseNative
  [errno: string]: unknown
}
const Fuse = createRequire(import.meta.url)('fuse-native') as FuseCtor
const exec = promisify(execFile)

const ERRNO: Record<FsErrorCode, number> = {
  ENOENT: -2,
  EIO: -5,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  EROFS: -30,
  ENODATA: -61,
}
const TYPE_BITS: Record<FsStat['type'], number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
}
const CACHE_SECONDS = 3600

export interface FuseMount {
  readonly dir: string
  /** Unmounts (lazily if busy). Idempotent. */
  close(): Promise<void>
}

export async function mountFuse(
  dir: string,
  fs: ImageFs,
  options: { name: string; warn?: (message: string) => void },
): Promise<FuseMount> {
  const warn = options.warn ?? (() => {})
  const fuse = new Fuse(dir, operations(fs, warn), {
    timeout: false,
    allowOther: true,
    defaultPermissions: true,
    kernelCache: true,
    entryTimeout: CACHE_SECONDS,
    attrTimeout: CACHE_SECONDS,
    fsname: `thaw-${options.name.replace(/[^A-Za-z0-9_.-]/g, '_')},ro,use_ino,negative_timeout=${CACHE_SECONDS}`,
    subtype: 'thaw',
  })
  await new Promise<void>((resolve, reject) =>
    fuse.mount((err) =>
      err ? reject(new MountError('MOUNT_FAILED', `mount on ${dir}: ${err.message}`)) : resolve(),
    ),
  )
  let closing: Promise<void> | undefined
  return {
    dir,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        fuse.unmount((err) => {
          if (err) warn(`unmount of ${dir}: ${err.message}`)
          resolve()
        })
      })),
  }
}

/** Detaches a FUSE mount left by a dead process (`fusermount -u -z`); false if it was not one. */
export async function detachStaleMount(dir: string): Promise<boolean> {
  try {
    await exec('fusermount', ['-u', '-z', dir])
    return true
  } catch {
    return false
  }
}

/** FUSE mountpoints under `root`, from /proc/self/mountinfo (field 5 is the mountpoint). */
export async function fuseMountsUnder(root: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const out: string[] = []
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ')
    const point = left?.split(' ')[4]?.replace(/\\040/g, ' ')
    if (!point || !right?.startsWith('fuse')) continue
    if (point === root || point.startsWith(`${root}/`)) out.push(point)
  }
  return out
}

type Cb = (code: number, ...rest: unknown[]) => void

function operations(fs: ImageFs, warn: (message: string) => void): Record<string, unknown> {
  const answer = (cb: Cb, f: () => unknown) => {
    try {
      cb(0, f())
    } catch (err) {
      cb(errnoOf(err, warn))
    }
  }
  const rofs = (...args: unknown[]) => (args[args.length - 1] as Cb)(ERRNO.EROFS)
  return {
    getattr: (path: string, cb: Cb) => answer(cb, () => toStat(fs.getattr(path))),
    readdir: (path: string, cb: Cb) => {
      try {
        const { names, stats } = fs.readdir(path)
        cb(0, names, stats.map(toStat))
      } catch (err) {
        cb(errnoOf(err, warn))
      }
    },
    readlink: (path: string, cb: Cb) => answer(cb, () => fs.readlink(path)),
    // fuse-native copies the value into the caller's buffer and answers its length; it does not
    // pass the buffer's size to JS, so ERANGE for a too-small buffer cannot be answered here.
    getxattr: (path: string, name: string, _position: number, cb: Cb) =>
      answer(cb, () => fs.getxattr(path, name)),
    listxattr: (path: string, cb: Cb) => answer(cb, () => fs.listxattr(path)),
    open: (path: string, flags: number, cb: Cb) => {
      // O_WRONLY (1) or O_RDWR (2): the filesystem is read-only.
      if ((flags & 3) !== 0) return cb(ERRNO.EROFS)
      answer(cb, () => {
        fs.open(path)
        return 0
      })
    },
    read: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      // `buf` is libfuse's reply buffer: filled in place, never kept after cb (§7.1). Reads of
      // cached frames answer synchronously; only misses wait for the loader.
      let n: number | Promise<number>
      try {
        n = fs.read(path, buf, len, pos)
      } catch (err) {
        return cb(errnoOf(err, warn))
      }
      if (typeof n === 'number') return cb(n)
      n.then(
        (count) => cb(count),
        (err) => cb(errnoOf(err, warn)),
      )
    },
    statfs: (_path: string, cb: Cb) => {
      const { blocks, files } = fs.statfs()
      cb(0, { bsize: 4096, frsize: 4096, blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: 255 })
    },
    ...Object.fromEntries(
      ['write', 'create', 'truncate', 'ftruncate', 'utimens', 'chown', 'chmod', 'mknod', 'setxattr',
        'removexattr', 'unlink', 'rename', 'link', 'symlink', 'mkdir', 'rmdir'].map((op) => [op, rofs]),
    ),
  }
}

function toStat(s: FsStat) {
  const mtime = new Date(s.mtimeMs)
  return {
    mode: TYPE_BITS[s.type] | s.perm,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    ino: s.ino,
    // Linux makedev: minor low byte, major next 12 bits, minor's high bits above.
    rdev: ((s.devMajor & 0xfff) << 8) | (s.devMinor & 0xff) | ((s.devMinor & ~0xff) << 12),
    blksize: 4096,
    blocks: Math.ceil(s.size / 512),
    atime: mtime,
    mtime,
    ctime: mtime,
  }
}

function errnoOf(err: unknown, warn: (message: string) => void): number {
  if (err instanceof FsError) {
    if (err.code === 'EIO') warn(`EIO: ${err.message}`)
    return ERRNO[err.code]
  }
  warn(`unexpected error in a filesystem operation, answering EIO: ${String(err)}`)
  return ERRNO.EIO
}
