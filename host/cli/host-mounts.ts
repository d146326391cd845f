import { join } from 'node:path'
import { createImageMounts, type MountLogger } from '../mount/create-image-mounts.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/index.ts'

export interface HostMountsOptions {
  /** Where mounts keep their cache and mountpoints (`<state>/mounts`). */
  dir: string
  /** Edge base URLs the images are pulled through (`--edge`), in the order given. */
  edges: string[]
  /** Bound of the shared frame cache (default 8 GiB). */
  cacheBytes?: number
  logger?: MountLogger
  /** For edges and registries with auth on. */
  credentials?: CredentialsOption
}

const DEFAULT_CACHE_BYTES = 8 * 1024 ** 3

/**
 * The lazy FUSE mounts `thaw host` runs on: one frame cache under `<dir>/cache` shared by every
 * image, mountpoints under `<dir>/mnt` (kept stable so a restarted host detaches what a dead one
 * left there). Tests pass their own ImageMounts to startHost instead.
 */
export function createMounts(options: HostMountsOptions): Promise<ImageMounts> {
  return createImageMounts({
    edges: options.edges,
    cacheDir: join(options.dir, 'cache'),
    mountRoot: join(options.dir, 'mnt'),
    cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES,
    logger: options.logger,
    credentials: options.credentials,
  })
}
