import { constants, readSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import type { Frame } from '../../runtime/format/frame.ts'
import { MountError } from './errors.ts'

/**
 * One streaming blob in the local cache: its decoded tar stream in a sparse file, and a journal
 * of the frames that are present.
 *
 *   <hex>.data     sparse; frame f's decoded bytes at [f.uoff, f.uoff + f.ulen)
 *   <hex>.journal  append-only records, 28 bytes each, little-endian:
 *                    coff u64 | clen u32 | uoff u64 | ulen u32 | crc32 of the 24 bytes before u32
 *                  the first is a header naming the data file it describes: coff 2^53 - 1,
 *                  clen the journal's version (2), uoff the data file's inode number, ulen 0
 *
 * The journal is trusted only with that data file: a data file that is gone (made anew), is
 * another file (inode), or is shorter than a journaled frame's end (every frame is written
 * before it is journaled) holds none of the bytes the journal names, and a journal without the
 * header was written before the header existed, when a cache clear racing an open could pair a
 * journal with a data file made anew (blob-cache.ts): all of them are emptied, and their frames
 * fetched again, never read as a hole's zeros or a short read.
 *
 * A frame is journaled only after its bytes were verified (sha256 of the compressed frame, decoded
 * length) and the data file was fdatasync'ed, so after a SIGKILL or a power cut the journal never
 * names a frame whose bytes are not on disk. Readers need no durability: a frame is readable (by
 * pread, from the page cache) as soon as it is written, and fdatasync + journal follow in the
 * background, batched: one fdatasync covers every frame written while the previous one ran (a
 * bundle of a hundred frames costs a few fdatasyncs, not a hundred on the read path). A torn or corrupt trailing record is ignored (its
 * frame is fetched again). A record names the frame by all four coordinates, so an index that cuts
 * the same blob differently never trusts another index's frames.
 */
export const JOURNAL_RECORD_BYTES = 28
/** The header's coff and clen (no frame starts at 2^53 - 1). */
const HEADER_COFF = Number.MAX_SAFE_INTEGER
const JOURNAL_VERSION = 2

export class CachedBlob {
  readonly hex: string
  readonly #dataPath: string
  readonly #journalPath: string
  readonly #present = new Map<number, { uoff: number; ulen: number }>()
  readonly #inflight = new Map<number, Promise<void>>()
  #data: FileHandle | undefined
  #journal: FileHandle | undefined
  #presentBytes = 0
  #writes: Promise<void> = Promise.resolve()
  /** Written, readable, not yet journaled; flushed by #durable. */
  #unjournaled: Frame[] = []
  #durable: Promise<void> = Promise.resolve()
  lastUsed = Date.now()

  private constructor(hex: string, dataPath: string, journalPath: string) {
    this.hex = hex
    this.#dataPath = dataPath
    this.#journalPath = journalPath
  }

  /** Opens (creating if needed) the blob's files and loads its journal (trusted as said above). */
  static async open(hex: string, dataPath: string, journalPath: string): Promise<CachedBlob> {
    const blob = new CachedBlob(hex, dataPath, journalPath)
    try {
      const journal = (blob.#journal = await open(journalPath, 'a+', 0o600))
      // Not O_APPEND for the data: Linux pwrite(2) ignores the offset on an O_APPEND file.
      let data = await open(dataPath, constants.O_RDWR).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw err
      })
      if (!data) {
        // Emptied before the data file is made: a crash in between leaves nothing to trust.
        await journal.truncate(0)
        data = await open(dataPath, constants.O_RDWR | constants.O_CREAT, 0o600)
      }
      blob.#data = data
      const { ino, size } = await data.stat({ bigint: true })
      const bytes = await journal.readFile()
      let records = parseJournal(bytes.subarray(JOURNAL_RECORD_BYTES))
      const trusted =
        journalHeader(bytes) === ino && records.every((r) => BigInt(r.uoff + r.ulen) <= size)
      if (trusted) {
        // Cut a torn tail off, or records appended after it would be ignored at the next load.
        await journal.truncate((records.length + 1) * JOURNAL_RECORD_BYTES)
      } else {
        records = []
        await journal.truncate(0)
        await journal.write(headerRecord(ino))
      }
      for (const r of records) blob.#mark(r.coff, r.uoff, r.ulen)
      return blob
    } catch (err) {
      await Promise.all([blob.#data, blob.#journal].map((h) => h?.close().catch(() => {})))
      throw err
    }
  }

  /** The data file's descriptor while open (the FUSE layer duplicates it for direct reads). */
  get fd(): number | undefined {
    return this.#data?.fd
  }

  get presentBytes(): number {
    return this.#presentBytes
  }

  has(frame: Frame): boolean {
    const p = this.#present.get(frame.coff)
    return p !== undefined && p.uoff === frame.uoff && p.ulen === frame.ulen
  }

  /** The fetch (or bundle record) that will bring this frame, if one is under way. */
  pending(frame: Frame): Promise<void> | undefined {
    return this.#inflight.get(frame.coff)
  }

  /** Registers `done` as the arrival of `frames`, so concurrent readers wait for it. */
  track(frames: readonly Frame[], done: Promise<void>): void {
    for (const f of frames) this.#inflight.set(f.coff, done)
    const forget = () => {
      for (const f of frames) if (this.#inflight.get(f.coff) === done) this.#inflight.delete(f.coff)
    }
    done.then(forget, forget)
  }

  /**
   * Writes verified, decoded frames; they are readable when this resolves, journaled once durable
   * (see the class comment). Writes are serialized per blob.
   */
  store(frames: readonly Frame[], decoded: readonly Buffer[]): Promise<void> {
    const run = this.#writes.then(() => this.#write(frames, decoded))
    this.#writes = run.catch(() => {})
    return run
  }

  /** Resolves when every frame stored so far is on disk and journaled. */
  flushed(): Promise<void> {
    return this.#writes.then(() => this.#durable)
  }

  async #write(frames: readonly Frame[], decoded: readonly Buffer[]): Promise<void> {
    const data = this.#data
    if (!data || !this.#journal)
      throw new MountError('MOUNT_CLOSED', `cache blob ${this.hex} is closed`)
    const todo = frames.map((f, i) => ({ f, bytes: decoded[i]! })).filter(({ f }) => !this.has(f))
    if (todo.length === 0) return
    for (const { f, bytes } of todo) await writeAll(data, bytes, f.uoff)
    for (const { f } of todo) this.#mark(f.coff, f.uoff, f.ulen)
    this.lastUsed = Date.now()
    this.#unjournaled.push(...todo.map(({ f }) => f))
    // A failed flush leaves its frames unjournaled: readable now, fetched again after a restart.
    this.#durable = this.#durable.then(() => this.#journalWritten()).catch(() => {})
  }

  async #journalWritten(): Promise<void> {
    const frames = this.#unjournaled.splice(0)
    const data = this.#data
    const journal = this.#journal
    if (frames.length === 0 || !data || !journal) return
    await data.datasync()
    const records = Buffer.alloc(JOURNAL_RECORD_BYTES * frames.length)
    frames.forEach((f, i) => encodeRecord(records, i * JOURNAL_RECORD_BYTES, f))
    await journal.write(records, 0, records.length)
  }

  /**
   * Reads present bytes at tar offset `position` into `buf` (the caller checked presence): a
   * pread on the calling thread, not the thread pool. Present frames are almost always in the
   * page cache (they were just written, or read before), and a FUSE read answered without the
   * pool skips two thread hops (formats.md §7.2: ~65 µs against ~116 µs per read).
   */
  readInto(buf: Buffer, length: number, position: number): number {
    const data = this.#data
    if (!data) throw new Error(`cache blob ${this.hex} is closed`)
    this.lastUsed = Date.now()
    let done = 0
    while (done < length) {
      const n = readSync(data.fd, buf, done, length - done, position + done)
      if (n === 0) break
      done += n
    }
    return done
  }

  /** Copies present bytes `[position, position + length)` of the tar stream to `target` at 0. */
  async copyTo(target: FileHandle, position: number, length: number): Promise<void> {
    const data = this.#data
    if (!data) throw new Error(`cache blob ${this.hex} is closed`)
    this.lastUsed = Date.now()
    const buf = Buffer.allocUnsafe(Math.min(length, 1 << 20))
    for (let done = 0; done < length;) {
      const { bytesRead } = await data.read(
        buf,
        0,
        Math.min(buf.length, length - done),
        position + done,
      )
      if (bytesRead === 0) throw new Error(`cache blob ${this.hex} ends at ${position + done}`)
      await writeAll(target, buf.subarray(0, bytesRead), done)
      done += bytesRead
    }
  }

  async close(): Promise<void> {
    await this.flushed()
    const handles = [this.#data, this.#journal]
    this.#data = this.#journal = undefined
    await this.#writes
    await Promise.all(handles.map((h) => h?.close()))
  }

  get paths(): { data: string; journal: string } {
    return { data: this.#dataPath, journal: this.#journalPath }
  }

  #mark(coff: number, uoff: number, ulen: number): void {
    if (!this.#present.has(coff)) this.#presentBytes += ulen
    this.#present.set(coff, { uoff, ulen })
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done)
    done += bytesWritten
  }
}

/** The header naming data file `ino` (see the class comment). */
function headerRecord(ino: bigint): Buffer {
  const out = Buffer.alloc(JOURNAL_RECORD_BYTES)
  out.writeBigUInt64LE(BigInt(HEADER_COFF), 0)
  out.writeUInt32LE(JOURNAL_VERSION, 8)
  out.writeBigUInt64LE(ino, 12)
  out.writeUInt32LE(crc32(out.subarray(0, 24)), 24)
  return out
}

/** The inode number the journal's header names, or undefined (no intact header of this version). */
function journalHeader(bytes: Buffer): bigint | undefined {
  if (bytes.length < JOURNAL_RECORD_BYTES) return undefined
  if (crc32(bytes.subarray(0, 24)) !== bytes.readUInt32LE(24)) return undefined
  const header = bytes.readBigUInt64LE(0) === BigInt(HEADER_COFF)
  return header && bytes.readUInt32LE(8) === JOURNAL_VERSION ? bytes.readBigUInt64LE(12) : undefined
}

function encodeRecord(out: Buffer, at: number, f: Frame): void {
  out.writeBigUInt64LE(BigInt(f.coff), at)
  out.writeUInt32LE(f.clen, at + 8)
  out.writeBigUInt64LE(BigInt(f.uoff), at + 12)
  out.writeUInt32LE(f.ulen, at + 20)
  out.writeUInt32LE(crc32(out.subarray(at, at + 24)), at + 24)
}

/** The journal's valid records, stopping at the first torn or corrupt one (a header is one, of 0 bytes). */
export function parseJournal(
  bytes: Buffer,
): { coff: number; clen: number; uoff: number; ulen: number }[] {
  const out = []
  for (let at = 0; at + JOURNAL_RECORD_BYTES <= bytes.length; at += JOURNAL_RECORD_BYTES) {
    if (crc32(bytes.subarray(at, at + 24)) !== bytes.readUInt32LE(at + 24)) break
    out.push({
      coff: Number(bytes.readBigUInt64LE(at)),
      clen: bytes.readUInt32LE(at + 8),
      uoff: Number(bytes.readBigUInt64LE(at + 12)),
      ulen: bytes.readUInt32LE(at + 20),
    })
  }
  return out
}
