import type { Digest } from '../../runtime/oci/digest.ts'
import type { ImageConfig } from '../../runtime/oci/schemas.ts'
import type { Profile } from '../../runtime/profile/profile.ts'
import type { EdgeStatus } from './source-set.ts'

/**
 * What the host's pool needs from lazy mounts (implemented in this folder by createImageMounts).
 * One FUSE mount per image on the machine, shared by every node that runs it and reference-counted
 * by leases; the last release unmounts it.
 *
 * @example
 *   const lease = await mounts.acquire('127.0.0.1:5000/apps/hello:v1', { record: true })
 *   // lease.root is a read-only root filesystem; the sandbox puts an overlay on top of it
 *   const profile = lease.started()   // at the function's first response
 *   await lease.release()
 */
export interface ImageMounts {
  acquire(reference: string, options?: AcquireOptions): Promise<MountLease>
  /**
   * A lease on the mount at `root` that a host that died left and this one serves again (kept
   * by thaw-fuse-keeper), for a node of that host this one adopts; undefined when there is no
   * such mount. Its image is the one the mount was made for.
   */
  adoptLease?(root: string): Promise<MountLease | undefined>
  /**
   * Drops every cached frame of blobs not in use and the parsed indexes kept for mounting an
   * image again (`thaw up`, the benchmark and tests use it for a cold start).
   */
  clearCache(): Promise<void>
  /** Unmounts everything (waits for nothing but the unmounts). Idempotent. */
  close(): Promise<void>
  /** The edges images come through: health, preference and measurements (for /metrics). */
  edges?(): EdgeStatus[]
}

export interface AcquireOptions {
  /**
   * Record the first access to each file (and the ranges read) until the lease has started().
   * `'without-bundle'`: only when the mount replays no prefetch bundle of this workload (none
   * streamed and none held from before), so an image the edge has a profile of is not recorded
   * again by every machine that starts it.
   */
  record?: boolean | 'without-bundle'
  /** Replay the image's prefetch bundle if it has one (default true). */
  replay?: boolean
  /**
   * What runs (the app, or `<app>/<function>` for a cold start of one function): the profile it
   * records and the bundle it replays are that workload's. Default '' (the unnamed one).
   */
  workload?: string
  /**
   * For a caller that cannot tell when the start is over (the snapshotter: a node pulls an image
   * before it runs it, and a container's answers are not the snapshotter's to see): the start
   * begins at the mount's first file open after this acquire and is over `recordLimitMs` later,
   * when the lease is started() by itself. Without it, a start nobody calls started() for only
   * widens its read-ahead `recordLimitMs` after the acquire.
   */
  startsAtFirstAccess?: boolean
  signal?: AbortSignal
}

export interface MountLease {
  /** The mountpoint: the image's merged root filesystem, read-only. */
  readonly root: string
  readonly image: MountedImage
  /** Where the acquire's time went (0 when the mount was already there and shared). */
  readonly timings: { resolveMs: number; mountMs: number; prefetchMs: number }
  /** A prefetch bundle was (or is being) streamed into the cache for this mount. */
  readonly replayed: boolean
  /** This lease records the start (AcquireOptions.record): started() returns the profile. */
  readonly recording: boolean
  /**
   * Settles when the start is over: `'started'` by started() (with `startsAtFirstAccess`, also
   * by its time limit), `'released'` when the lease was released first.
   */
  readonly startEnded: Promise<'started' | 'released'>
  /**
   * Image data the mount fetched from the edge since this acquire began (ImageMount.fetched: the
   * bundle and range requests, not the resolve's manifest and index). The mount is shared, so
   * it includes what other nodes of the image read meanwhile.
   */
  fetched(): Fetched
  /**
   * The start is over (the function's first response): stops the recording and returns what was
   * recorded (undefined when this lease did not record), and ends a replay's narrow read-ahead.
   * The start that mounted the image has then answered, and the mount begins fetching the rest of
   * the image in the background (at the latest 120 s after the acquire, or at release).
   */
  started(): Profile | undefined
  /** Idempotent. */
  release(): Promise<void>
}

export interface Fetched {
  requests: number
  bytes: number
}

export interface MountedImage {
  /** As given to acquire. */
  reference: string
  /** Repository of the reference, for the edge's `_thaw` endpoints. */
  repository: string
  /** The original image manifest (the profile's subject). */
  manifest: Digest
  /** The streaming artifact mounted. */
  artifact: Digest
  /** The original image's config: user, env, entrypoint, cmd, working dir. */
  config: ImageConfig
}
