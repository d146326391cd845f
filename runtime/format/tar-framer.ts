import type { FrameWriter } from './frame-writer.ts'
import type { TocEntry } from './layer-toc.ts'
import type { TarHeader } from './tar/header.ts'
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from './tar/writer.ts'

export interface FramingOptions {
  /** Cut a frame once this much is pending after a small entry (default 512 KiB). */
  groupBytes: number
  /** Files larger than this start a new frame and are split into frames of this size (1 MiB). */
  splitBytes: number
}

/**
 * Writes tar entries (re-encoded headers, content, padding) into a FrameWriter and decides where
 * frames end (formats.md §8.2): consecutive small files share a frame of about `groupBytes`; a file
 * over `splitBytes` starts a new frame, so its first frame drags in nothing unrelated, and is cut
 * every `splitBytes`; an entry is not added to a frame it would push past `splitBytes`.
 */
export class TarFramer {
  readonly entries: TocEntry[] = []
  readonly #w: FrameWriter
  readonly #o: FramingOptions
  #splitting = false
  #size = 0

  constructor(writer: FrameWriter, options: FramingOptions) {
    this.#w = writer
    this.#o = options
  }

  begin(path: string, h: TarHeader): void {
    const header = encodeTarHeader({ ...h, name: path })
    const w = this.#w
    this.#splitting = h.type === 'file' && h.size > this.#o.splitBytes
    if (this.#splitting) w.cut()
    else if (
      w.pending > 0 &&
      w.pending + header.length + h.size + paddingFor(h.size) > this.#o.splitBytes
    )
      w.cut()
    w.append(header)
    this.#size = h.size
    this.entries.push({
      path,
      type: h.type,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      size: h.size,
      mtime: h.mtime,
      mtimeNsec: h.mtimeNsec,
      linkName: h.linkName,
      uname: h.uname,
      gname: h.gname,
      devMajor: h.devMajor,
      devMinor: h.devMinor,
      xattrs: h.xattrs,
      offset: w.uoff,
    })
  }

  data(bytes: Uint8Array): void {
    const w = this.#w
    if (!this.#splitting) return w.append(bytes)
    const split = this.#o.splitBytes
    for (let pos = 0; pos < bytes.length;) {
      if (w.pending >= split) w.cut()
      const take = Math.min(split - w.pending, bytes.length - pos)
      w.append(bytes.subarray(pos, pos + take))
      pos += take
    }
  }

  end(): void {
    this.#w.appendZeros(paddingFor(this.#size))
    if (!this.#splitting && this.#w.pending >= this.#o.groupBytes) this.#w.cut()
    this.#splitting = false
  }

  /** Writes queued frames to the sink (with its backpressure). */
  drain(): Promise<void> {
    return this.#w.drain()
  }

  /** Writes the end-of-archive blocks; the caller then finishes the FrameWriter. */
  finish(): void {
    this.#w.append(END_OF_ARCHIVE)
  }
}
