import { mkdir, rmdir } from 'node:fs/promises'
import { createCodec } from '../../runtime/format/codec/codec.ts'
import type { BundleRecord } from '../../runtime/artifact/bundle.ts'
import type { FsBlob } from '../../runtime/format/fs-index.ts'
import { digestHex } from '../../runtime/oci/digest.ts'
import { backgroundFetch } from './background-fetch.ts'
import type { BlobCache } from './blob-cache.ts'
import {
  replayBundle,
  startBundle,
  type PendingBundle,
  type ReplayResult,
} from './bundle-replay.ts'
import type { CachedBlob } from './cached-blob.ts'
import type { FuseStats } from '../fuse/fuse-session.ts'
import type { FileCache } from './file-cache.ts'
import type { Fetched } from './image-mounts.ts'
import type { FrameDecoder } from './frame-decoder.ts'
import { FrameLoader } from './frame-loader.ts'
import { mountFuse, type FuseMount } from './fuse-mount.ts'
import { ImageFs, type AccessObserver } from './image-fs.ts'
import { keptImage, type ResolvedImage } from './resolve-image.ts'
import type { FuseKeeper, KeptSession } from '../fuse/fuse-keeper.ts'
import type { SourceSet } from './source-set.ts'

export interface ImageMountOptions {
  image: ResolvedImage
  dir: string
  cache: BlobCache
  sources: SourceSet
  replay: boolean
  /** The bundle request, when the caller started it early (otherwise the mount starts it). */
  bundle?: PendingBundle
  /** Decodes large runs off the FUSE thread (shared by the mounts of a host). */
  decoder?: FrameDecoder
  /** Fetch the rest of the image after replay (default true). */
  background?: boolean
  /**
   * The background fetch starts only once this has resolved (and reads have paused): the start
   * that mounted the image has answered. Without it, only the pause counts, and a start that
   * pauses (a cold start on a busy machine, or one that reads nothing for a while) shared its link
   * with 8 MiB background runs: 183 MB fetched for a start that read 57.7 MB.
   */
  backgroundAfter?: Promise<unknown>
  /** Local copies of whole files for FUSE passthrough; none: every read goes through FUSE. */
  files?: FileCache
  /** The records of this artifact's bundle, when this host stored it whole before. */
  heldBundle?: BundleRecords
  /** Hand the FUSE connection to this keeper: the mount then outlives this process. */
  keeper?: FuseKeeper
  /** Serve the mount a dead process left with the keeper (`dir` is its), instead of mounting. */
  adopt?: KeptSession
  /** Whose bundle a mount that asks for one asks for ('' = the unnamed default). */
  workload?: string
  /** The kernel's read-ahead while a start is recorded or replayed, KiB (START_READ_AHEAD_KB). */
  startReadAheadKb?: number
  warn: (message: string) => void
}

/** A bundle's records (blob digest, compressed offset, length): what it brings. */
export type BundleRecords = readonly BundleRecord[]

/** Whether every frame those records bring is in the cache already. */
export function recordsCached(
  records: BundleRecords,
  blobs: readonly FsBlob[],
  cached: readonly CachedBlob[],
): boolean {
  const byDigest = new Map<string, number>(blobs.map((b, i) => [b.digest, i]))
  return records.every((r) => {
    const i = byDigest.get(r.blob)
    if (i === undefined) return true // the index blob (record 0)
    const end = r.offset + r.length
    return blobs[i]!.frames.every(
      (f) => f.coff + f.clen <= r.offset || f.coff >= end || cached[i]!.has(f),
    )
  })
}

/**
 * Read-ahead while a start is recorded or replayed, KiB (ImageMount.narrowReadAhead): one page.
 * A read() larger than that still asks for what it reads in one request (up to the mount's io_pages);
 * a page fault reads its page. Below 4 (0) the kernel would fetch read()s a page at a time.
 */
export const START_READ_AHEAD_KB = 4

/** The most read-ahead a user may set, KiB. */
export const MAX_READ_AHEAD_KB = 65536

/** The rest of the image is fetched once on-demand reads have paused this long (startup first). */
const BACKGROUND_AFTER_QUIET_MS = 2000

/**
 * One image mounted: its blobs held in the cache, a frame loader over the sources, the FUSE
 * filesystem, and the prefetch work (bundle replay, then background fetch of the rest).
 */
export class ImageMount {
  readonly image: ResolvedImage
  readonly dir: string
  readonly fs: ImageFs
  readonly loader: FrameLoader
  /** Settles when the bundle was streamed (or found missing). */
  readonly replay: Promise<ReplayResult>
  /** True once a bundle's header arrived (its frames are in flight), false when there is none. */
  readonly replayFound: Promise<boolean>
  /** The bundle was not asked for: this host stored it whole before and its frames are cached. */
  readonly bundleHeld: boolean
  /** Settles when every frame is present (or the mount closed first). */
  readonly background: Promise<{ complete: boolean }>
  readonly #fuse: FuseMount
  readonly #blobs: CachedBlob[]
  readonly #cache: BlobCache
  readonly #abort = new AbortController()
  readonly #warn: (message: string) => void
  readonly #replayed: ReplayResult = { found: false, bytes: 0, records: 0, rejected: 0 }
  #closing: Promise<void> | undefined
  /** Recorded or replayed starts under way (narrowReadAhead), and the recording's share. */
  #narrowed = 0
  #recording: (() => void) | undefined
  readonly #startReadAheadKb: number

  private constructor(
    o: ImageMountOptions,
    blobs: CachedBlob[],
    loader: FrameLoader,
    fs: ImageFs,
    fuse: FuseMount,
  ) {
    this.image = o.image
    this.dir = o.dir
    this.#cache = o.cache
    this.#blobs = blobs
    this.loader = loader
    this.fs = fs
    this.#fuse = fuse
    this.#warn = o.warn
    this.#startReadAheadKb = o.startReadAheadKb ?? START_READ_AHEAD_KB
    const signal = this.#abort.signal
    const none: ReplayResult = { found: false, bytes: 0, records: 0, rejected: 0 }
    let onFound: (found: boolean) => void = () => {}
    this.replayFound = new Promise((resolve) => (onFound = resolve))
    // A bundle not asked for yet is asked for now, unless this host stored this artifact's
    // bundle before and every frame it brings is still in the cache.
    const held = o.heldBundle && recordsCached(o.heldBundle, o.image.index.blobs, blobs)
    this.bundleHeld = Boolean(held)
    const bundle = o.replay
      ? (o.bundle ??
        (held
          ? undefined
          : startBundle(o.sources, o.image.repository, o.image.manifest, o.warn, o.workload)))
      : undefined
    if (bundle) signal.addEventListener('abort', () => bundle.cancel(), { once: true })
    this.replay = bundle
      ? replayBundle(o.image, bundle.opened, loader, {
          warn: o.warn,
          onFound,
          progress: this.#replayed,
        })
      : Promise.resolve(none)
    this.replay.then(
      () => onFound(false),
      () => onFound(false),
    )
    this.background =
      o.background === false
        ? Promise.resolve({ complete: false })
        : this.replay
            .then(() => o.backgroundAfter)
            .then(() => loader.quiet(BACKGROUND_AFTER_QUIET_MS, signal))
            .then(
              () =>
                backgroundFetch(
                  loader,
                  o.image.index.blobs.map((b) => b.frames.length),
                  { signal, warn: o.warn },
                ),
              () => ({ complete: false }), // unmounted before the workload went quiet
            )
  }

  static async mount(o: ImageMountOptions): Promise<ImageMount> {
    const blobs: CachedBlob[] = []
    try {
      const { artifact } = o.image
      for (const [i, b] of o.image.index.blobs.entries()) {
        const layer = artifact.config.source.layers[i]
        const lineage = layer && {
          image: artifact.config.source.manifest,
          layer,
          generation: artifact.generation,
        }
        blobs.push(await o.cache.acquire(b.digest, b.frames, lineage))
      }
      let stored = 0
      const loader = new FrameLoader({
        index: o.image.index,
        codec: createCodec(o.image.index.codec),
        repository: o.image.repository,
        sources: o.sources,
        blobs,
        decoder: o.decoder,
        copies: o.cache,
        warn: o.warn,
        // Keep the cache within its bound as it grows (idle blobs of other images go first).
        onStored: () => void (++stored % 64 === 0 && o.cache.enforceLimit()),
      })
      const fs = new ImageFs(o.image.index, loader)
      // An adopted mount is there already, and nobody serves it yet: not a stat of it here.
      if (!o.adopt) await mkdir(o.dir, { recursive: true })
      const fuse = await mountFuse(o.dir, fs, {
        name: digestHex(o.image.manifest).slice(0, 12),
        warn: o.warn,
        passthrough: o.files !== undefined,
        // Narrow from the start: the mount's first start records or replays (narrowReadAhead).
        readAheadKb: o.startReadAheadKb ?? START_READ_AHEAD_KB,
        keep: o.keeper && { keeper: o.keeper, data: keptImage(o.image) },
        adopt: o.adopt,
      })
      if (o.files && fuse.info.passthrough) fs.passThrough(o.files)
      // Reads of frames in the cache are answered by the FUSE layer itself, from the blobs' files.
      blobs.forEach((blob, i) => {
        const fd = blob.fd
        if (fd !== undefined)
          fuse.directBlob(i, fd, o.image.index.blobs[i]!.frames, loader.present[i]!)
      })
      fuse.setDirectReads(true)
      return new ImageMount(o, blobs, loader, fs, fuse)
    } catch (err) {
      o.bundle?.cancel()
      await Promise.all(blobs.map((b) => o.cache.release(b)))
      throw err
    }
  }

  /**
   * Records accesses into `observer` until `stopRecording`. Passthrough (image-fs.ts) and direct
   * reads are off meanwhile, and read-ahead is narrow (narrowReadAhead).
   */
  async record(observer: AccessObserver): Promise<void> {
    const first = this.fs.observers.size === 0
    this.fs.observers.add(observer)
    if (!first) return
    this.#fuse.setDirectReads(false) // every read reaches ImageFs, and so the recorder
    this.#recording = await this.narrowReadAhead()
  }

  stopRecording(observer: AccessObserver): void {
    if (!this.fs.observers.delete(observer) || this.fs.observers.size > 0) return
    this.#fuse.setDirectReads(true)
    this.#recording?.()
  }

  /**
   * Until the returned function is called (once), the kernel reads ahead only START_READ_AHEAD_KB
   * in files opened meanwhile, not the 1 MiB it may otherwise. For a recorded start: a profile
   * holds what reached the mount, and read-ahead beyond what the process read makes every bundle
   * of this image larger (a page fault reads the read-ahead around it: at the kernel's default of
   * 128 KiB, the bench's function recorded 57.7 MB, at 4 KiB 38.4 MB; its bundle 20.0 MB and 15.7
   * MB). For a replayed start: its reads then stay inside the ranges its recording saw, which the
   * bundle holds; with 1 MiB, page faults in a large binary read around ranges the bundle does
   * not have, and each is a range request (thaw up's replay: 12 range requests and 33.5 MiB with
   * 1 MiB, 3 and 21.0 MiB with 128 KiB). A new mount starts narrow; its first lease narrows it (so
   * nothing widens it meanwhile) and widens it when its start is over. Narrowing only after the
   * mount was made at 1 MiB did not help (11 range requests): the first files a start opens keep
   * the read-ahead of their open.
   */
  async narrowReadAhead(): Promise<() => void> {
    if (this.#narrowed++ === 0) await this.#readAhead(this.#startReadAheadKb)
    let widened = false
    return () => {
      if (widened) return
      widened = true
      if (--this.#narrowed === 0) void this.#readAhead(this.#fuse.info.maxPages * 4)
    }
  }

  async #readAhead(kb: number): Promise<void> {
    await this.#fuse.setReadAhead(kb).catch((err: Error) => {
      // The last lease's release stops recording and unmounts at once: nothing to set then.
      if (this.#closing === undefined) this.#warn(`read-ahead: ${err.message}`)
    })
  }

  /**
   * Image data fetched from the edge so far: the frame loader's range requests (reads that
   * missed, background fetch) and their bytes, and the prefetch bundle (one request) with the
   * bytes of it that arrived. Not the manifest, artifact and index the resolve read.
   */
  get fetched(): Fetched {
    const bundle = this.#replayed.found
    return {
      requests: this.loader.stats.requests + (bundle ? 1 : 0),
      bytes: this.loader.stats.bytes + (bundle ? this.#replayed.bytes : 0),
    }
  }

  /** What the FUSE layer answered (READs that reached thaw, passthrough opens). */
  get fuseStats(): FuseStats {
    return this.#fuse.stats
  }

  /** Stops prefetching, unmounts, releases the blobs. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#abort.abort()
      await this.#fuse.close()
      await rmdir(this.dir).catch(() => {})
      // Prefetch work in flight is not waited for: its stores finish or fail on closed files
      // (CachedBlob.close waits for writes under way), and nothing is journaled half-done.
      await Promise.all(this.#blobs.map((b) => this.#cache.release(b)))
    })())
  }
}
