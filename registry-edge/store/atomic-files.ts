import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { StoreLayout } from './store-layout.ts'

/**
 * Crash-safe file writes for the store: write a temp file, fsync it, rename it over the target,
 * fsync the directory. A process killed at any moment leaves either the old file or the new one
 * (rename(2) is atomic within a filesystem), plus maybe a temp file that startup removes.
 */
export class AtomicFiles {
  readonly #layout: StoreLayout
  /** Directories known to exist: mkdir once per directory, not once per write. */
  readonly #dirs = new Set<string>()

  constructor(layout: StoreLayout) {
    this.#layout = layout
  }

  async write(target: string, data: string | Uint8Array): Promise<void> {
    const tmp = this.#layout.tmpFile()
    const handle = await open(tmp, 'wx')
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await this.moveIntoPlace(tmp, target)
  }

  /** Renames an already synced file into place and makes the rename durable. */
  async moveIntoPlace(source: string, target: string): Promise<void> {
    const dir = dirname(target)
    await this.ensureDir(dir)
    try {
      await rename(source, target)
    } catch (err) {
      await rm(source, { force: true })
      throw err
    }
    await syncDir(dir)
  }

  async ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return
    await mkdir(dir, { recursive: true })
    this.#dirs.add(dir)
  }
}

/** fsync(2) on a directory, so a rename or unlink in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The file's text, or undefined if it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
