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
 *
 * Entries a profile placed ahead are `skip`ped where they stood: they are not written again, but
 * count towards the cuts as if they were (`#held` is what the frame would hold in the layout
 * without an order). So every frame that holds none of them is byte for byte the frame of the
 * unordered layout: a re-layout reuses the frames of everything it did not move, and a host that
 * cached the earlier generation needs only the frames that moved (dedup by content).
 */
export class TarFramer {
  readonly entries: TocEntry[] = []
  readonly #w: FrameWriter
  readonly #o: FramingOptions
  #splitting = false
  #size = 0
  /** Bytes of the current frame in the unordered layout (skipped entries included). */
  #held = 0
  /** Whether the current frame's content is profiled (hot) or not (cold); undefined: neither yet. */
  #hot: boolean | undefined

  constructor(writer: FrameWriter, options: FramingOptions) {
    this.#w = writer
    this.#o = options
  }

  begin(path: string, h: TarHeader): void {
    const header = encodeTarHeader({ ...h, name: path })
    const w = this.#w
    this.#startEntry(header.length, h)
    w.append(header)
    this.#held += header.length
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

  /**
   * Appends an entry's content. `hot`: whether a start reads these bytes (a profile's ranges);
   * when given, hot and cold content never share a frame, and frames holding hot content are
   * compressed with the FrameWriter's hot codec.
   */
  data(bytes: Uint8Array, hot?: boolean): void {
    const w = this.#w
    if (hot !== undefined) {
      if (this.#hot !== undefined && this.#hot !== hot) this.cut()
      this.#hot = hot
    }
    if (!this.#splitting) {
      if (hot) w.markHot()
      w.append(bytes)
      this.#held += bytes.length
      return
    }
    const split = this.#o.splitBytes
    for (let pos = 0; pos < bytes.length;) {
      if (this.#held >= split) this.cut()
      const take = Math.min(split - this.#held, bytes.length - pos)
      if (hot) w.markHot()
      this.#hot = hot
      w.append(bytes.subarray(pos, pos + take))
      this.#held += take
      pos += take
    }
  }

  end(): void {
    const padding = paddingFor(this.#size)
    this.#w.appendZeros(padding)
    this.#held += padding
    this.#endEntry()
  }

  /**
   * An entry already written ahead (by the order) met again in the original order: nothing is
   * written, the frames are cut as if it were.
   */
  skip(path: string, h: TarHeader): void {
    const headerLength = encodeTarHeader({ ...h, name: path }).length
    this.#startEntry(headerLength, h)
    this.#held += headerLength
    const split = this.#o.splitBytes
    for (let left = h.size; left > 0;) {
      if (this.#splitting && this.#held >= split) this.cut()
      const take = this.#splitting ? Math.min(split - this.#held, left) : left
      this.#held += take
      left -= take
    }
    this.#held += paddingFor(h.size)
    this.#endEntry()
  }

  /** Ends the current frame (if anything is pending) and starts the next one afresh. */
  cut(): void {
    this.#w.cut()
    this.#held = 0
    this.#hot = undefined
  }

  /** Writes queued frames to the sink (with its backpressure). */
  drain(): Promise<void> {
    return this.#w.drain()
  }

  /** Writes the end-of-archive blocks; the caller then finishes the FrameWriter. */
  finish(): void {
    this.#w.append(END_OF_ARCHIVE)
  }

  #startEntry(headerLength: number, h: TarHeader): void {
    this.#splitting = h.type === 'file' && h.size > this.#o.splitBytes
    if (this.#splitting) this.cut()
    else if (
      this.#held > 0 &&
      this.#held + headerLength + h.size + paddingFor(h.size) > this.#o.splitBytes
    )
      this.cut()
  }

  #endEntry(): void {
    if (!this.#splitting && this.#held >= this.#o.groupBytes) this.cut()
    this.#splitting = false
  }
}
