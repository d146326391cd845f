import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebStream } from 'node:stream/web'
import { encodeBundlePrefix, type BundleHeader } from '../../runtime/artifact/index.ts'
import { Hasher, digestHex, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import { readJsonIfExists, writeFileAtomic } from './atomic-json.ts'

export interface CachedBundle {
  path: string
  size: number
  /** sha256 of the whole bundle: its ETag and Docker-Content-Digest. */
  digest: Digest
}

/**
 * Prefetch bundles built once and kept on disk, one per (artifact, profile):
 *
 *   <dir>/<artifact hex>-<profile hex>.bundle        the bytes
 *   <dir>/<artifact hex>-<profile hex>.json          { digest, size }, written after the bytes
 *
 * A bundle is written to a temp name and renamed, so a half-built one is never served; concurrent
 * requests for the same bundle share one build.
 */
export class BundleCache {
  readonly #dir: string
  readonly #backend: RegistryBackend
  readonly #building = new Map<string, Promise<CachedBundle>>()
  /** When each bundle was last asked for (ms), so pruning spares the ones being served. */
  readonly #used = new Map<string, number>()

  constructor(dir: string, backend: RegistryBackend) {
    this.#dir = dir
    this.#backend = backend
  }

  /**
   * The bundle of (artifact, profile): the one on disk, or built from the header `plan` gives.
   * Planning parses the image's index (tens of thousands of entries for a 1 GB image, a few
   * hundred ms), so it runs only when the bundle is not built yet.
   */
  get(
    key: { artifact: Digest; profile: Digest },
    plan: () => Promise<BundleHeader>,
    signal?: AbortSignal,
  ): Promise<CachedBundle> {
    const name = `${digestHex(key.artifact)}-${digestHex(key.profile)}`
    this.#used.set(name, Date.now())
    let build = this.#building.get(name)
    if (!build) {
      build = this.#load(name, plan, signal).finally(() => this.#building.delete(name))
      this.#building.set(name, build)
    }
    return build
  }

  async #load(
    name: string,
    plan: () => Promise<BundleHeader>,
    signal?: AbortSignal,
  ): Promise<CachedBundle> {
    const path = join(this.#dir, `${name}.bundle`)
    const meta = (await readJsonIfExists(join(this.#dir, `${name}.json`))) as
      { digest: Digest; size: number } | undefined
    if (meta && (await stat(path).catch(() => undefined))?.size === meta.size)
      return { path, ...meta }
    const header = await plan()
    await mkdir(this.#dir, { recursive: true })
    const tmp = join(this.#dir, `${name}.${randomUUID()}.tmp`)
    const hasher = new Hasher()
    try {
      await pipeline(
        Readable.from(this.#bytes(header, signal)),
        hashing(hasher),
        createWriteStream(tmp, { flags: 'wx' }),
      )
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    const built = { digest: hasher.digest(), size: hasher.size }
    await writeFileAtomic(join(this.#dir, `${name}.json`), JSON.stringify(built))
    return { path, ...built }
  }

  /**
   * Garbage collection: removes the bundles of artifacts `isLive` says are gone, then the least
   * recently used until the rest fit in `maxBytes`. A bundle asked for in the last `busyMs`
   * (default 60 s: a response may be opening it) or being built stays. Returns what was (or would be) removed.
   */
  async prune(options: {
    maxBytes: number
    isLive?: (artifact: Digest) => boolean
    busyMs?: number
    dryRun: boolean
  }): Promise<{ count: number; bytes: number }> {
    const now = Date.now()
    const bundles = []
    for (const file of await readdir(this.#dir).catch(() => [] as string[])) {
      if (!file.endsWith('.bundle')) continue
      const name = file.slice(0, -'.bundle'.length)
      const info = await stat(join(this.#dir, file)).catch(() => undefined)
      if (!info) continue
      const used = Math.max(this.#used.get(name) ?? 0, info.mtimeMs)
      bundles.push({ name, size: info.size, used, artifact: `sha256:${name.split('-')[0]}` as Digest })
    }
    bundles.sort((a, b) => a.used - b.used)
    const busy = (b: { name: string; used: number }) =>
      this.#building.has(b.name) || now - b.used < (options.busyMs ?? 60_000)
    let total = bundles.reduce((n, b) => n + b.size, 0)
    const freed = { count: 0, bytes: 0 }
    for (const b of bundles) {
      const orphan = options.isLive !== undefined && !options.isLive(b.artifact)
      if (busy(b) || (!orphan && total <= options.maxBytes)) continue
      if (!options.dryRun) {
        await rm(join(this.#dir, `${b.name}.json`), { force: true })
        await rm(join(this.#dir, `${b.name}.bundle`), { force: true })
        this.#used.delete(b.name)
      }
      total -= b.size
      freed.count++
      freed.bytes += b.size
    }
    return freed
  }

  async *#bytes(header: BundleHeader, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    yield encodeBundlePrefix(header)
    for (const r of header.records) {
      const web = this.#backend.readBlob(
        r.blob,
        { start: r.offset, end: r.offset + r.length - 1 },
        signal,
      )
      let got = 0
      for await (const chunk of Readable.fromWeb(web as NodeWebStream<Uint8Array>)) {
        got += (chunk as Uint8Array).length
        yield chunk as Uint8Array
      }
      if (got !== r.length)
        throw new Error(`blob ${r.blob} gave ${got} bytes at ${r.offset}, not ${r.length}`)
    }
  }
}

function hashing(hasher: Hasher) {
  return async function* (source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      hasher.update(chunk)
      yield chunk
    }
  }
}
