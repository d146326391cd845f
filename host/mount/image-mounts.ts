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
  /** Record the first access to each file (and the ranges read) until the lease has started(). */
  record?: boolean
  /** Replay the image's prefetch bundle if it has one (default true). */
  replay?: boolean
  /**
   * What runs (the app, or `<app>/<function>` for a cold start of one function): the profile it
   * records and the bundle it replays are that workload's. Default '' (the unnamed one).
   */
  workload?: string
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
