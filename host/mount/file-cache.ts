import { randomUUID } from 'node:crypto'
import { openSync } from 'node:fs'
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'

/**
 * Whole files of images, decompressed, for FUSE passthrough: the kernel reads (and maps) such a
 * copy directly, so none of its reads reach thaw. Keyed by where the content is in its streaming
 * blob (content-addressed), so images that share a layer share copies:
 *
 *   <dir>/files/<blob hex>.<tar offset>.<size>   a complete copy (published by rename)
 *   <dir>/tmp/                                   copies being written; emptied at open
 *   <dir>/boot-id                                the boot the copies were written in
 *
 * Copies are made from frames that were verified, and are never fsync'ed: a copy under its final
 * name is complete unless the machine itself went down before writeback, so after a reboot (the
 * boot id changed) every copy is dropped and made again from the frame cache, which is durable.
 * Bounded by `maxBytes`, least recently used out; a copy a passthrough open holds stays readable
 * after eviction (the kernel holds the file).
 */
export class FileCache {
  readonly #files: string
  readonly #tmp: string
  readonly #maxBytes: number
  readonly #present = new Map<string, { bytes: number; lastUsed: number }>()
  readonly #making = new Map<string, Promise<boolean>>()
  #bytes = 0
  #closed = false

  private constructor(dir: string, maxBytes: number) {
    this.#files = join(dir, 'files')
    this.#tmp = join(dir, 'tmp')
    this.#maxBytes = maxBytes
  }

  static async open(dir: string, maxBytes: number): Promise<FileCache> {
    const cache = new FileCache(dir, maxBytes)
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    const marker = join(dir, 'boot-id')
    const written = await readFile(marker, 'utf8').catch(() => '')
    if (written.trim() !== bootId) await rm(cache.#files, { recursive: true, force: true })
    await rm(cache.#tmp, { recursive: true, force: true })
    await mkdir(cache.#files, { recursive: true })
    await mkdir(cache.#tmp, { recursive: true })
    await writeFile(marker, `${bootId}\n`)
    for (const name of await readdir(cache.#files)) {
      const s = await stat(join(cache.#files, name)).catch(() => undefined)
      if (!s) continue
      cache.#present.set(name, { bytes: s.size, lastUsed: s.mtimeMs })
      cache.#bytes += s.size
    }
    return cache
  }

  /** The key of a file's content: its blob and place in that blob's tar stream. */
  static key(blobHex: string, offset: number, size: number): string {
    return `${blobHex}.${offset}.${size}`
  }

  has(key: string): boolean {
    return this.#present.has(key)
  }

  /** A copy under way (or made), to wait for: true once it is there. */
  making(key: string): Promise<boolean> | undefined {
    return this.#making.get(key)
  }

  /**
   * A read-only descriptor of the copy (the caller closes it), or undefined. Synchronous: it runs
   * on the thread answering FUSE opens, and an open(2) of a local file is a few microseconds.
   */
  openSync(key: string): number | undefined {
    const entry = this.#present.get(key)
    if (!entry) return undefined
    try {
      const fd = openSync(join(this.#files, key), 'r') // libuv opens with O_CLOEXEC
      entry.lastUsed = Date.now()
      return fd
    } catch {
      this.#forget(key)
      return undefined
    }
  }

  /**
   * Makes the copy of `size` bytes with `fill` (which writes them into the handle from offset 0)
   * unless it exists or is being made; resolves true once it is there, false if it failed.
   */
  put(key: string, size: number, fill: (target: FileHandle) => Promise<void>): Promise<boolean> {
    if (this.#present.has(key)) return Promise.resolve(true)
    let made = this.#making.get(key)
    if (made) return made
    made = this.#make(key, size, fill).finally(() => this.#making.delete(key))
    this.#making.set(key, made)
    return made
  }

  /** Removes every copy (the next opens go through FUSE until copies are made again). */
  async clear(): Promise<void> {
    for (const key of [...this.#present.keys()]) await this.#remove(key)
  }

  async close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled(this.#making.values())
  }

  async #make(key: string, size: number, fill: (t: FileHandle) => Promise<void>): Promise<boolean> {
    if (this.#closed || size > this.#maxBytes) return false
    const tmp = join(this.#tmp, `${key}.${randomUUID()}`)
    let target: FileHandle | undefined
    try {
      target = await open(tmp, 'wx', 0o444)
      await fill(target)
      if ((await target.stat()).size !== size) throw new Error('copy has the wrong size')
      await target.close()
      target = undefined
      await rename(tmp, join(this.#files, key))
    } catch {
      await target?.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      return false
    }
    this.#present.set(key, { bytes: size, lastUsed: Date.now() })
    this.#bytes += size
    await this.#enforceLimit(key)
    return true
  }

  async #enforceLimit(keep: string): Promise<void> {
    if (this.#bytes <= this.#maxBytes) return
    const lru = [...this.#present].sort((a, b) => a[1].lastUsed - b[1].lastUsed)
    for (const [key] of lru) {
      if (this.#bytes <= this.#maxBytes) break
      if (key !== keep) await this.#remove(key)
    }
  }

  async #remove(key: string): Promise<void> {
    this.#forget(key)
    await unlink(join(this.#files, key)).catch(() => {})
  }

  #forget(key: string): void {
    const entry = this.#present.get(key)
    if (!entry) return
    this.#present.delete(key)
    this.#bytes -= entry.bytes
  }
}
