import { join } from 'node:path'
import { FuseKeeper } from '../fuse/fuse-keeper.ts'
import { createImageMounts, type MountLogger } from '../mount/create-image-mounts.ts'
import { MAX_READ_AHEAD_KB } from '../mount/image-mount.ts'
import { integer } from './command.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/index.ts'
import type { HostLogger } from '../log/host-logger.ts'

export interface HostMountsOptions {
  /** Where mounts keep their cache and mountpoints (`<state>/mounts`). */
  dir: string
  /** Edge base URLs the images are pulled through (`--edge`), in the order given. */
  edges: string[]
  /** Bound of the shared frame cache (default 8 GiB). */
  cacheBytes?: number
  /** The host's log: the mounts' lines go there, marked `component: "mount"`. */
  logger?: HostLogger
  /** For edges and registries with auth on. */
  credentials?: CredentialsOption
  /**
   * Keep the mounts' FUSE connections in thaw-fuse-keeper (default true): a host that dies leaves
   * its nodes' image mounts waiting, not broken, and the next host on the same state serves them.
   */
  keep?: boolean
}

const DEFAULT_CACHE_BYTES = 8 * 1024 ** 3

/**
 * THAW_RECORD_LIMIT_MS: how long a start is recorded at most (default 10 s). A profile recorded on
 * a machine so loaded that the start takes longer is cut at the limit; benchmarks that need the
 * whole start's profile on a busy machine raise it.
 */
export function recordLimitMs(): number | undefined {
  const raw = process.env.THAW_RECORD_LIMIT_MS
  if (raw === undefined || raw === '') return undefined
  const ms = Number(raw)
  if (!Number.isInteger(ms) || ms <= 0)
    throw new Error(`THAW_RECORD_LIMIT_MS must be a positive integer (milliseconds), not ${raw}`)
  return ms
}

/**
 * THAW_START_READ_AHEAD_KB: the kernel's read-ahead while a start is recorded or replayed (default
 * image-mount.ts START_READ_AHEAD_KB); for measuring what it does to profiles and bundles.
 */
function startReadAheadKb(): number | undefined {
  const raw = process.env.THAW_START_READ_AHEAD_KB
  if (raw === undefined || raw === '') return undefined
  return integer('THAW_START_READ_AHEAD_KB', raw, 0, MAX_READ_AHEAD_KB)
}

/**
 * The lazy FUSE mounts `thaw host` runs on: one frame cache under `<dir>/cache` shared by every
 * image, mountpoints under `<dir>/mnt` (kept stable so a restarted host serves again, or detaches,
 * what a dead one left there). Tests pass their own ImageMounts to startHost instead.
 */
export async function createMounts(options: HostMountsOptions): Promise<ImageMounts> {
  const keeper = options.keep === false ? undefined : await FuseKeeper.open()
  return createImageMounts({
    edges: options.edges,
    cacheDir: join(options.dir, 'cache'),
    mountRoot: join(options.dir, 'mnt'),
    cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES,
    logger: options.logger && mountLogger(options.logger),
    credentials: options.credentials,
    keeper,
    recordLimitMs: recordLimitMs(),
    startReadAheadKb: startReadAheadKb(),
  })
}

function mountLogger(logger: HostLogger): MountLogger {
  return {
    info: (message) => logger.log('info', message, { component: 'mount' }),
    warn: (message) => logger.log('warn', message, { component: 'mount' }),
  }
}
