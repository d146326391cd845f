import { closeSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FuseKeeper, KeptSession } from './fuse-keeper.ts'

/**
 * thaw's own FUSE layer (native/thaw_fuse.c, built by scripts/install.sh): a read-only
 * filesystem on /dev/fuse, inode-based, with replies given whenever the filesystem is ready.
 * This file is the only one that knows the addon; a filesystem implements `FuseOps`.
 *
 * The kernel is told the content never changes: entries, attributes and negative lookups are
 * cached for an hour, the page cache survives reopening a file, directory listings are cached,
 * symlinks are cached, reads are up to 1 MiB. Where the kernel has FUSE passthrough (6.9+), an
 * open answered with `{ backingFd }` makes the kernel read that local file directly.
 */
export interface FuseStat {
  ino: number
  /** st_mode: type and permission bits. */
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  mtime: number
  mtimeNsec: number
}

export interface FuseOpen {
  /**
   * A local file with the whole content, for passthrough. The session closes it once the open is
   * answered (the kernel keeps its own reference while the file is in passthrough).
   */
  backingFd?: number
  /**
   * Where the file's bytes are in a blob registered with `directBlob` (`offset` in the blob's
   * decoded stream): reads of frames marked present are answered in C, without a call to read().
   */
  direct?: { blob: number; offset: number; size: number }
}

export interface FuseDir {
  /** Without `.` and `..`: the session adds them. */
  names: readonly string[]
  stats: readonly FuseStat[]
}

/**
 * What a filesystem answers. Errors are thrown (or rejected) with `code` set to an errno name
 * (`ENOENT`, `EIO`…); anything else answers EIO and is reported through `onError`. `lookup`
 * answers undefined for a name that does not exist (a negative entry the kernel caches).
 */
export interface FuseOps {
  lookup(parent: number, name: string): FuseStat | undefined
  getattr(ino: number): FuseStat
  readlink(ino: number): string
  open(ino: number, flags: number): FuseOpen | Promise<FuseOpen>
  /** Up to `size` bytes at `offset`; a short (or empty) buffer at the end of the file. */
  read(ino: number, offset: number, size: number): Buffer | Promise<Buffer>
  readdir(ino: number): FuseDir
  getxattr(ino: number, name: string): Buffer | undefined
  listxattr(ino: number): readonly string[]
  statfs(): { blocks: number; files: number }
}

export interface FuseMountOptions {
  /** Shown as the mount's source in /proc/mounts. */
  name: string
  /**
   * Hand the connection to a keeper (fuse-keeper.ts), so it outlives this process; `data` is kept
   * with it for the process that adopts it. close() takes it back from the keeper first.
   */
  keep?: { keeper: FuseKeeper; data: unknown }
  /** Threads reading /dev/fuse (default 2). */
  threads?: number
  /** Ask for passthrough (default true; used only where the kernel offers it). */
  passthrough?: boolean
  cacheSeconds?: number
  /** The kernel's read-ahead for the mount, KiB (default max_pages × 4: 1 MiB here). */
  readAheadKb?: number
  onError?: (message: string) => void
  /** The connection ended without close() (aborted, or unmounted from outside). */
  onGone?: () => void
}

export interface FuseInfo {
  protocolMinor: number
  maxPages: number
  maxReadahead: number
  passthrough: boolean
  readdirplus: boolean
  /** The INIT flags agreed (a process adopting the session needs them). */
  flags: number
  /** Adopted sessions: the errno of FUSE_NOTIFY_RESEND (0: what the dead server read is resent). */
  resendError: number
}

/** What the session answered, for tests and reports. */
export interface FuseStats {
  /** READ requests: reads that reached thaw (a passthrough file's never do). */
  reads: number
  opens: number
  /** Opens answered in passthrough mode. */
  passthroughOpens: number
  /** Requests answered in JS, of every kind (metadata included). */
  requests: number
  /** READs answered in C from the frame cache (`direct`; counted in `reads` too). */
  directReads: number
}

export interface FuseSession {
  readonly dir: string
  readonly info: FuseInfo
  readonly stats: FuseStats
  /** Sets how far the kernel reads ahead on this mount (KiB; default the largest request). */
  setReadAhead(kb: number): Promise<void>
  /**
   * Registers blob `index` for direct reads: `fd` holds its decoded stream (the frame cache's data
   * file; duplicated), `frames` its frames in order, `present` one byte per frame, set to 1 by the
   * caller once that frame is readable from `fd` (never cleared while the session lives).
   */
  directBlob(
    index: number,
    fd: number,
    frames: readonly { uoff: number; ulen: number }[],
    present: Uint8Array,
  ): void
  /** Direct reads on or off (off while every read must reach `read()`, e.g. to record them). */
  setDirectReads(on: boolean): void
  /** Detaches the mount and stops serving it (processes still inside get ENOTCONN). Idempotent. */
  close(): Promise<void>
}

type Handle = { readonly __brand: 'FuseHandle' }
type Start = (
  dir: string,
  name: string,
  options: Record<string, number>,
  handler: (...args: never[]) => void,
) => Promise<{ handle: Handle; info: FuseInfo }>
interface Addon {
  mount: Start
  /** Like mount, on a connection an earlier server set up (options: fd, ioFd and its INIT values). */
  adopt: Start
  descriptors(h: Handle): [fuse: number, io: number]
  keeperCall(socket: string, message: string, fds: number[]): { text: string; fds: number[] }[]
  unmount(handle: Handle): Promise<void>
  detach(dir: string): number
  replyError(h: Handle, unique: number, errno: number): void
  replyEntry(h: Handle, unique: number, attrs: Float64Array): void
  replyAttr(h: Handle, unique: number, attrs: Float64Array): void
  replyData(h: Handle, unique: number, data: Buffer, length: number): void
  replyXattrSize(h: Handle, unique: number, size: number): void
  replyStatfs(h: Handle, unique: number, blocks: number, files: number): void
  replyOpen(h: Handle, unique: number, nodeid: number, backingFd: number): number
  directBlob(
    h: Handle,
    index: number,
    fd: number,
    uoffs: Float64Array,
    ulens: Float64Array,
    present: Uint8Array,
  ): void
  directInode(h: Handle, nodeid: number, blob: number, base: number, size: number): void
  /** Direct reads so far; with `on`, switches them first. */
  directReads(h: Handle, on?: boolean): number
  replyDir(
    h: Handle,
    unique: number,
    plus: boolean,
    first: number,
    names: string[],
    attrs: Float64Array,
    size: number,
  ): number
}

const ADDON_PATH = fileURLToPath(new URL('./build/Release/thaw_fuse.node', import.meta.url))
let addon: Addon | undefined
export function loadAddon(): Addon {
  return (addon ??= createRequire(import.meta.url)(ADDON_PATH) as Addon)
}

/** Op numbers of native/thaw_fuse.c's `enum js_op`. */
const Op = {
  gone: 0,
  lookup: 1,
  getattr: 2,
  readlink: 3,
  open: 4,
  read: 5,
  readdir: 6,
  getxattr: 7,
  listxattr: 8,
  statfs: 9,
} as const

/** A request as the addon hands it over (after handle and op); what a, b, c mean depends on op. */
type Request = [unique: number, nodeid: number, a: number, b: number, c: number, name?: string]

const ATTR_FIELDS = 10
const { EIO, ERANGE } = constants.errno

export function mountFuse(
  dir: string,
  ops: FuseOps,
  options: FuseMountOptions,
): Promise<FuseSession> {
  const native = loadAddon()
  return serve(dir, ops, options, native.mount, {})
}

/**
 * Serves a session whose server died, from the descriptors its keeper held (`FuseKeeper.orphans`):
 * the same mount, the same inode numbers (ops must number them as the dead server did), and the
 * requests it read but never answered are asked for again.
 */
export function adoptFuse(
  kept: KeptSession,
  ops: FuseOps,
  options: FuseMountOptions,
): Promise<FuseSession> {
  const native = loadAddon()
  const { info, fds } = kept
  return serve(kept.dir, ops, options, native.adopt, {
    fd: fds[0],
    ioFd: fds[1],
    protocolMinor: info.protocolMinor,
    flags: info.flags,
    maxReadahead: info.maxReadahead,
  })
}

async function serve(
  dir: string,
  ops: FuseOps,
  options: FuseMountOptions,
  start: Start,
  adopted: Record<string, number>,
): Promise<FuseSession> {
  const native = loadAddon()
  const cache = options.cacheSeconds ?? 3600
  const onError = options.onError ?? (() => {})
  const dispatcher = new Dispatcher(native, ops, onError)
  // Requests come with the session's handle: the first may arrive before mount() settles.
  const handler = (h: Handle, op: number, ...request: Request) =>
    op === Op.gone ? options.onGone?.() : dispatcher.dispatch(h, op, ...request)
  let mounted: { handle: Handle; info: FuseInfo }
  try {
    mounted = await start(
      dir,
      options.name,
      {
        threads: options.threads ?? 2,
        passthrough: options.passthrough === false ? 0 : 1,
        entryTimeout: cache,
        attrTimeout: cache,
        negativeTimeout: cache,
        allowOther: 1,
        ...adopted,
      },
      handler as (...args: never[]) => void,
    )
  } catch (err) {
    throw Object.assign(new Error(`mount on ${dir}: ${(err as Error).message}`), {
      errno: (err as { errno?: number }).errno,
    })
  }
  const { keep } = options
  if (keep) {
    try {
      await keep.keeper.store(dir, native.descriptors(mounted.handle), {
        info: mounted.info,
        data: keep.data,
      })
    } catch (err) {
      onError(`${dir} is not kept: it ends with this process (${(err as Error).message})`)
    }
  }
  // The kernel reads ahead 128 KiB by default whatever max_pages allows; sequential reads and
  // page faults of files read through FUSE then come in requests of 1 MiB instead of 128 KiB.
  await setReadAhead(dir, options.readAheadKb ?? mounted.info.maxPages * 4).catch((err: Error) =>
    onError(`read-ahead of ${dir} not raised: ${err.message}`),
  )
  let closing: Promise<void> | undefined
  const close = async () => {
    try {
      keep?.keeper.drop(dir)
    } catch (err) {
      onError(`the keeper did not let go of ${dir}: ${(err as Error).message}`)
    }
    await native
      .unmount(mounted.handle)
      .catch((err: Error) => onError(`unmount of ${dir}: ${err.message}`))
  }
  const h = mounted.handle
  return {
    dir,
    info: mounted.info,
    get stats() {
      const directReads = native.directReads(h)
      const s = dispatcher.stats
      return { ...s, reads: s.reads + directReads, directReads }
    },
    setReadAhead: (kb) => setReadAhead(dir, kb),
    directBlob: (index, fd, frames, present) =>
      native.directBlob(
        h,
        index,
        fd,
        Float64Array.from(frames, (f) => f.uoff),
        Float64Array.from(frames, (f) => f.ulen),
        present,
      ),
    setDirectReads: (on) => void native.directReads(h, on),
    close: () => (closing ??= close()),
  }
}

/** Sets the mount's read-ahead (its bdi, found by device number in /proc/self/mountinfo). */
async function setReadAhead(dir: string, kb: number): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  const target = resolve(dir)
  let device: string | undefined
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ')
    if (fields[4]?.replace(/\\040/g, ' ') === target) device = fields[2] // the last one wins
  }
  if (!device) throw new Error('not in /proc/self/mountinfo')
  await writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, String(kb))
}

/** Detaches whatever is mounted on `dir` (`umount -l`); false if nothing was. */
export function detachMount(dir: string): boolean {
  return loadAddon().detach(dir) === 0
}

/** Answers requests: from the filesystem's values or promises to the addon's reply functions. */
class Dispatcher {
  /** What JS answered (directReads stays 0 here: the session adds the addon's count). */
  readonly stats: FuseStats = {
    reads: 0,
    opens: 0,
    passthroughOpens: 0,
    requests: 0,
    directReads: 0,
  }
  readonly #attrs = new Float64Array(ATTR_FIELDS)
  readonly #dirs = new Map<number, { names: string[]; attrs: Float64Array }>()

  constructor(
    readonly native: Addon,
    readonly ops: FuseOps,
    readonly onError: (message: string) => void,
  ) {}

  dispatch(h: Handle, op: number, ...[unique, nodeid, a, b, c, name]: Request): void {
    const { native, ops } = this
    this.stats.requests++
    try {
      switch (op) {
        case Op.lookup: {
          const st = ops.lookup(nodeid, name!)
          if (st === undefined) this.#attrs.fill(0)
          else this.#fill(this.#attrs, 0, st)
          return native.replyEntry(h, unique, this.#attrs)
        }
        case Op.getattr:
          this.#fill(this.#attrs, 0, ops.getattr(nodeid))
          return native.replyAttr(h, unique, this.#attrs)
        case Op.readlink: {
          const target = Buffer.from(ops.readlink(nodeid))
          return native.replyData(h, unique, target, target.length)
        }
        case Op.open:
          return this.#settle(h, unique, ops.open(nodeid, a), (o) => {
            const fd = o.backingFd ?? -1
            if (o.direct)
              native.directInode(h, nodeid, o.direct.blob, o.direct.offset, o.direct.size)
            try {
              const mode = native.replyOpen(h, unique, nodeid, fd)
              this.stats.opens++
              if (mode === 1) this.stats.passthroughOpens++
              if (mode < 0) this.onError(`passthrough refused for inode ${nodeid}: errno ${-mode}`)
            } finally {
              if (fd >= 0) closeSync(fd)
            }
          })
        case Op.read:
          this.stats.reads++
          return this.#settle(h, unique, ops.read(nodeid, b, c), (data) =>
            native.replyData(h, unique, data, data.length),
          )
        case Op.readdir:
          return this.#readdir(h, unique, nodeid, a === 1, b, c)
        case Op.getxattr: {
          const value = ops.getxattr(nodeid, name!)
          if (value === undefined) return native.replyError(h, unique, constants.errno.ENODATA)
          return this.#sized(h, unique, value, c)
        }
        case Op.listxattr: {
          const names = ops.listxattr(nodeid)
          return this.#sized(h, unique, Buffer.from(names.map((n) => `${n}\0`).join('')), c)
        }
        case Op.statfs: {
          const { blocks, files } = ops.statfs()
          return native.replyStatfs(h, unique, blocks, files)
        }
        default:
          return native.replyError(h, unique, constants.errno.ENOSYS)
      }
    } catch (err) {
      native.replyError(h, unique, this.#errno(err))
    }
  }

  #settle<T>(h: Handle, unique: number, value: T | Promise<T>, reply: (v: T) => void): void {
    if (!(value instanceof Promise)) return reply(value)
    value.then(reply).catch((err: unknown) => this.native.replyError(h, unique, this.#errno(err)))
  }

  /** A value for GETXATTR/LISTXATTR: its size when asked with 0, ERANGE when it does not fit. */
  #sized(h: Handle, unique: number, value: Buffer, size: number): void {
    if (size === 0) return this.native.replyXattrSize(h, unique, value.length)
    if (value.length > size) return this.native.replyError(h, unique, ERANGE)
    this.native.replyData(h, unique, value, value.length)
  }

  /**
   * The listing (with `.` and `..`) is built on the first READDIR of a directory and kept for the
   * next ones of the same pass (the kernel asks page by page, then caches it: FOPEN_CACHE_DIR).
   */
  #readdir(h: Handle, unique: number, ino: number, plus: boolean, offset: number, size: number) {
    let dir = this.#dirs.get(ino)
    if (dir === undefined || offset === 0) {
      const { names, stats } = this.ops.readdir(ino)
      const self = this.ops.getattr(ino)
      const attrs = new Float64Array((names.length + 2) * ATTR_FIELDS)
      this.#fill(attrs, 0, self)
      attrs[0] = 0 // `.` and `..` carry no entry (the kernel skips them in READDIRPLUS)
      attrs[ATTR_FIELDS] = 0
      attrs[ATTR_FIELDS + 1] = 1
      attrs[ATTR_FIELDS + 3] = 0o040000
      stats.forEach((st, i) => this.#fill(attrs, (i + 2) * ATTR_FIELDS, st))
      dir = { names: ['.', '..', ...names], attrs }
      if (this.#dirs.size >= 64) this.#dirs.delete(this.#dirs.keys().next().value!)
      this.#dirs.set(ino, dir)
    }
    const names = dir.names.slice(offset, offset + Math.ceil(size / 32))
    const attrs = dir.attrs.subarray(offset * ATTR_FIELDS, (offset + names.length) * ATTR_FIELDS)
    const written = this.native.replyDir(h, unique, plus, offset, names, attrs, size)
    if (offset + written >= dir.names.length) this.#dirs.delete(ino)
  }

  #fill(out: Float64Array, at: number, st: FuseStat): void {
    out[at] = st.ino
    out[at + 1] = st.ino
    out[at + 2] = st.size
    out[at + 3] = st.mode
    out[at + 4] = st.nlink
    out[at + 5] = st.uid
    out[at + 6] = st.gid
    out[at + 7] = st.rdev
    out[at + 8] = st.mtime
    out[at + 9] = st.mtimeNsec
  }

  #errno(err: unknown): number {
    const code = (err as { code?: unknown } | undefined)?.code
    const errno = typeof code === 'string' ? constants.errno[code as 'ENOENT'] : undefined
    if (errno !== undefined && errno !== EIO) return errno
    this.onError(`answering EIO: ${(err as Error)?.message ?? String(err)}`)
    return errno ?? EIO
  }
}
