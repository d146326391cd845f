import { closeSync, existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/auth.ts'
import { AccessRecorder } from '../profile/access-recorder.ts'
import { BlobCache } from './blob-cache.ts'
import { FileCache } from './file-cache.ts'
import { MountError } from './errors.ts'
import { detachStaleMount, fuseMountsUnder } from './fuse-mount.ts'
import { createFrameDecoder } from './frame-decoder.ts'
import { ImageMount, type BundleRecords } from './image-mount.ts'
import type { AcquireOptions, ImageMounts, MountLease } from './image-mounts.ts'
import { digestHex, sha256Of, type Digest } from '../../runtime/oci/digest.ts'
import { resolveWithBundle } from './bundle-replay.ts'
import { IndexCache } from './index-cache.ts'
import { resolveKept, type KeptImage, type ResolvedImage } from './resolve-image.ts'
import type { FuseKeeper } from '../fuse/fuse-keeper.ts'
import { describeError } from '../../runtime/errors.ts'
import { SourceSet, type EdgeStatus } from './source-set.ts'

export interface MountLogger {
  info(message: string): void
  warn(message: string): void
}

export interface ImageMountsOptions {
  /** Edge base URLs in preference order (nearest first). The reference's registry comes last. */
  edges: string[]
  cacheDir: string
  /** Mountpoints are created under it, one per image. */
  mountRoot: string
  /** Bound of the frame cache (decoded bytes); idle blobs are evicted LRU beyond it. */
  cacheBytes: number
  credentials?: CredentialsOption
  logger?: MountLogger
  /** Deadline of one request to one source (default 10 s). */
  requestTimeoutMs?: number
  /** How long a failed source is skipped (default 30 s). */
  retryAfterMs?: number
  /** Fetch the rest of each image in the background (default true). */
  background?: boolean
  /** How long a start is recorded, or read ahead narrowly while replaying, at most (default 10 s). */
  recordLimitMs?: number
  /** The kernel's read-ahead meanwhile, KiB (default image-mount.ts START_READ_AHEAD_KB). */
  startReadAheadKb?: number
  /** Threads that verify and decode large runs of frames (default: cores - 1, 1 to 4). */
  decoderThreads?: number
  /**
   * Open local files in FUSE passthrough mode, on whole-file copies kept beside the frame cache
   * (default true; used where the kernel has it, Linux 6.9+).
   */
  passthrough?: boolean
  /** Bound of those copies (default: cacheBytes). */
  fileCacheBytes?: number
  /**
   * Hand every mount's FUSE connection to this keeper: processes using a mount keep it if this
   * process dies, and the next createImageMounts on the same mountRoot serves it again.
   */
  keeper?: FuseKeeper
}

/** A start that has not answered by then lets the background fetch of its image begin anyway. */
const START_ANSWER_BOUND_MS = 120_000

export interface ImageMountsHandle extends ImageMounts {
  /** The mounts now open, by manifest digest (for `thaw mount`'s report and tests). */
  mounted(): ImageMount[]
}

/**
 * Lazy image mounts for a host: one FUSE mount per image (by manifest digest), shared by leases
 * and unmounted by the last release; a frame cache shared by all images. At creation, the mounts
 * a host that died left under `mountRoot` are served again when its keeper still holds them (the
 * processes inside go on; the mount is there for the next acquire of its image); other FUSE
 * mounts left there are detached (`umount -l`).
 */
export async function createImageMounts(options: ImageMountsOptions): Promise<ImageMountsHandle> {
  const log = options.logger ?? {
    info: () => {},
    warn: (m: string) => process.stderr.write(`thaw mount: ${m}\n`),
  }
  const mountRoot = resolve(options.mountRoot)
  const orphans = options.keeper ? await options.keeper.orphans(mountRoot) : []
  const live = new Set(await fuseMountsUnder(mountRoot))
  for (const dir of live) {
    if (orphans.some((o) => o.dir === dir)) continue
    if (await detachStaleMount(dir)) log.warn(`detached a stale mount left by a dead host: ${dir}`)
  }
  const cache = await BlobCache.open(options.cacheDir, options.cacheBytes)
  const files =
    options.passthrough === false
      ? undefined
      : await FileCache.open(options.cacheDir, options.fileCacheBytes ?? options.cacheBytes)
  const decoder = createFrameDecoder({ threads: options.decoderThreads, warn: log.warn })
  const sourceSets = new Map<string, SourceSet>()
  const mounts = new Map<
    string,
    { mount: Promise<ImageMount>; image: ResolvedImage; leases: number }
  >()
  const indexes = new IndexCache(200_000, join(options.cacheDir, 'indexes'))
  // Manifests whose bundle this host stored whole: their next mount decides after resolving.
  const replayedDir = join(options.cacheDir, 'replayed')
  const replayedMark = (manifest: string, workload: string) =>
    join(
      replayedDir,
      digestHex(manifest as Digest) + (workload && `-${digestHex(sha256Of(workload))}`),
    )
  // Acquires of one reference resolve one after the other (a scale-out asks for several leases at
  // once): the first mounts the image and asks for its bundle, the next stop after the manifest.
  const settling = new Map<string, Promise<void>>()
  const open = new Set<ImageMount>()
  let closed = false

  const sourcesFor = (registry: string | undefined): SourceSet => {
    const key = registry ?? ''
    let set = sourceSets.get(key)
    if (!set) {
      const origin = registry
        ? [`${/^(localhost|127\.|\[::1\])/.test(registry) ? 'http' : 'https'}://${registry}`]
        : []
      set = new SourceSet({
        urls: [...options.edges, ...origin],
        credentials: options.credentials,
        requestTimeoutMs: options.requestTimeoutMs,
        retryAfterMs: options.retryAfterMs,
        measured: options.edges.length,
        warn: log.warn,
      })
      sourceSets.set(key, set)
    }
    return set
  }

  const release = async (key: string) => {
    const entry = mounts.get(key)
    if (!entry || --entry.leases > 0) return
    mounts.delete(key)
    const mount = await entry.mount
    open.delete(mount)
    await mount.close()
  }

  /** A lease on `mount` (its entry's count already taken). */
  const leaseOn = (
    key: string,
    mount: ImageMount,
    o: {
      reference: string
      timings: MountLease['timings']
      replayed: boolean
      before: { requests: number; bytes: number }
      recorder?: AccessRecorder
      /** Called when the node's start is answered (started) or given up (release). */
      startAnswered?: () => void
      /** Ends the start's narrow read-ahead (ImageMount.narrowReadAhead). */
      widen?: () => void
      /** AcquireOptions.startsAtFirstAccess. */
      startsAtFirstAccess?: boolean
    },
  ): MountLease => {
    const { recorder, before } = o
    const limitMs = options.recordLimitMs ?? 10_000
    let over = false
    let endedAs!: (how: 'started' | 'released') => void
    const startEnded = new Promise<'started' | 'released'>((resolve) => (endedAs = resolve))
    let limit: NodeJS.Timeout | undefined
    if (o.startsAtFirstAccess)
      void mount.fs.nextAccess().then(() => {
        if (!over) limit = setTimeout(() => lease.started(), limitMs).unref()
      })
    // Otherwise a start nobody says is over only widens after the recording limit.
    else if (o.widen) limit = setTimeout(o.widen, limitMs).unref()
    const ended = (how: 'started' | 'released') => {
      if (over) return
      over = true
      o.startAnswered?.()
      clearTimeout(limit)
      o.widen?.()
      if (recorder) mount.stopRecording(recorder)
      endedAs(how)
    }
    let released = false
    const lease: MountLease = {
      root: mount.dir,
      image: {
        reference: o.reference,
        repository: mount.image.repository,
        manifest: mount.image.manifest,
        artifact: mount.image.artifact.digest,
        config: mount.image.config,
      },
      timings: o.timings,
      replayed: o.replayed,
      recording: recorder !== undefined,
      startEnded,
      fetched: () => {
        const now = mount.fetched
        return { requests: now.requests - before.requests, bytes: now.bytes - before.bytes }
      },
      started() {
        ended('started')
        return recorder?.stop()
      },
      async release() {
        if (released) return
        released = true
        ended('released')
        await release(key)
      },
    }
    return lease
  }

  /** The records of the artifact's bundle this host stored whole, if it did. */
  const heldBundle = async (manifest: string, artifact: string, workload: string) => {
    const text = await readFile(replayedMark(manifest, workload), 'utf8').catch(() => '')
    try {
      const held = JSON.parse(text) as { artifact?: string; records?: BundleRecords }
      return held.artifact === artifact && Array.isArray(held.records) ? held.records : undefined
    } catch {
      return undefined
    }
  }

  // Mounts a dead host left with the keeper: served again, with no lease until an acquire.
  for (const kept of orphans) {
    try {
      if (!live.has(kept.dir)) throw new Error('it is no longer mounted')
      const image = await resolveKept(kept.data as KeptImage, indexes)
      const mount = await ImageMount.mount({
        image,
        dir: kept.dir,
        cache,
        sources: sourcesFor(parseImageReference(image.reference).registry),
        replay: false,
        decoder,
        background: options.background,
        files,
        keeper: options.keeper,
        adopt: kept,
        warn: log.warn,
      })
      mounts.set(image.manifest, { mount: Promise.resolve(mount), image, leases: 0 })
      open.add(mount)
      log.info(`serving again the mount a dead host left: ${kept.dir} (${image.reference})`)
    } catch (err) {
      // Its connection ends: processes still inside get ENOTCONN, as without a keeper.
      log.warn(`not serving ${kept.dir} again: ${describeError(err)}`)
      for (const fd of kept.fds) closeSync(fd)
      options.keeper!.drop(kept.dir)
      await detachStaleMount(kept.dir)
    }
  }

  return {
    async acquire(reference: string, acquire: AcquireOptions = {}): Promise<MountLease> {
      if (closed) throw new MountError('MOUNT_CLOSED', 'image mounts are closed')
      const t0 = performance.now()
      const sources = sourcesFor(parseImageReference(reference).registry)
      const replay = acquire.replay ?? true
      const workload = acquire.workload ?? ''
      const ahead = settling.get(reference)
      let settled!: () => void
      const mine = new Promise<void>((resolve) => (settled = resolve))
      settling.set(reference, mine)
      let resolved: Awaited<ReturnType<typeof resolveWithBundle>>
      try {
        await ahead
        resolved = await resolveWithBundle(sources, reference, {
          replay,
          signal: acquire.signal,
          warn: log.warn,
          known: (manifest) => mounts.get(manifest)?.image,
          indexes,
          defer: (manifest) => existsSync(replayedMark(manifest, workload)),
          workload,
        })
      } catch (err) {
        settled()
        throw err
      } finally {
        if (settling.get(reference) === mine) settling.delete(reference)
      }
      const { image, bundle } = resolved
      const t1 = performance.now()
      const key = image.manifest
      const held =
        replay && !bundle && !mounts.has(key)
          ? await heldBundle(key, image.artifact.digest, workload)
          : undefined
      let entry = mounts.get(key)
      const fresh = !entry
      // The start that mounts the image: the rest of it is fetched only after it has answered.
      let startAnswered = () => {}
      if (!entry) {
        const answered = new Promise<void>((resolve) => (startAnswered = resolve))
        setTimeout(startAnswered, START_ANSWER_BOUND_MS).unref()
        const dir = join(mountRoot, digestHex(key).slice(0, 16))
        const mount = ImageMount.mount({
          image,
          dir,
          cache,
          sources,
          replay,
          bundle,
          decoder,
          background: options.background,
          backgroundAfter: answered,
          files,
          heldBundle: held,
          keeper: options.keeper,
          workload,
          startReadAheadKb: options.startReadAheadKb,
          warn: log.warn,
        })
        entry = { mount, image, leases: 0 }
        mounts.set(key, entry)
        // Its bundle stored whole: the next mount of this manifest asks for it only if needed.
        void mount
          .then((m) => m.replay)
          .then(async (r) => {
            if (!r.found || r.rejected > 0 || !r.header) return
            await mkdir(replayedDir, { recursive: true })
            const { artifact, records } = r.header
            await writeFile(replayedMark(key, workload), JSON.stringify({ artifact, records }))
          })
          .catch(() => {})
        mount.then(
          (m) => open.add(m),
          () => mounts.delete(key),
        )
      } else bundle?.cancel() // mounted meanwhile by another lease
      settled() // the entry is there: the next acquire of this reference joins it
      entry.leases++
      let mount: ImageMount
      try {
        mount = await entry.mount
      } catch (err) {
        entry.leases--
        throw err
      }
      const t2 = performance.now()
      const before = fresh ? { requests: 0, bytes: 0 } : mount.fetched
      // One round trip: whether a bundle is being streamed (not its arrival: reads wait per frame).
      const replayed = await mount.replayFound
      const t3 = performance.now()
      const record =
        acquire.record === 'without-bundle' ? !replayed && !mount.bundleHeld : acquire.record
      const recorder = record
        ? new AccessRecorder({
            subject: image.manifest,
            workload,
            limitMs: options.recordLimitMs,
            fromFirstAccess: acquire.startsAtFirstAccess,
          })
        : undefined
      if (recorder) await mount.record(recorder)
      // A replaying start reads ahead as its recording did, until it is over (started()); a new
      // mount is narrow from its making until its first start is over.
      const widen = fresh || replayed ? await mount.narrowReadAhead() : undefined
      const timings = fresh
        ? { resolveMs: t1 - t0, mountMs: t2 - t1, prefetchMs: t3 - t2 }
        : { resolveMs: 0, mountMs: 0, prefetchMs: 0 }
      return leaseOn(key, mount, {
        reference,
        timings,
        replayed,
        before,
        recorder,
        startAnswered,
        widen,
        startsAtFirstAccess: acquire.startsAtFirstAccess,
      })
    },
    async adoptLease(root) {
      for (const [key, entry] of mounts) {
        const mount = await entry.mount.catch(() => undefined)
        if (mount?.dir !== resolve(root)) continue
        entry.leases++
        const timings = { resolveMs: 0, mountMs: 0, prefetchMs: 0 }
        const reference = entry.image.reference
        return leaseOn(key, mount, { reference, timings, replayed: false, before: mount.fetched })
      }
      return undefined
    },
    async clearCache() {
      await indexes.clear()
      await rm(replayedDir, { recursive: true, force: true })
      await cache.clear()
      await files?.clear()
    },
    edges() {
      // Each registry's set measures the same edges: the first set's view of each.
      const seen = new Map<string, EdgeStatus>()
      for (const set of sourceSets.values())
        for (const e of set.edges()) if (!seen.has(e.url)) seen.set(e.url, e)
      return [...seen.values()]
    },
    mounted() {
      return [...open]
    },
    async close() {
      if (closed) return
      closed = true
      const all = [...mounts.values()]
      mounts.clear()
      await Promise.all(all.map(async (e) => (await e.mount.catch(() => undefined))?.close()))
      await cache.close()
      await files?.close()
      await decoder.close()
      await Promise.all([...sourceSets.values()].map((s) => s.close()))
    },
  }
}
