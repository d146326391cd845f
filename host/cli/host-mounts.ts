import { ThawError } from '../../runtime/errors.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'

export interface HostMountsOptions {
  /** Where mounts keep their cache and mountpoints (`<state>/mounts`). */
  dir: string
  /** Edge base URLs the images are pulled through (`--edge`), in the order given. */
  edges: string[]
  signal?: AbortSignal
}

/**
 * INTEGRATION SEAM: the lazy FUSE mounts `thaw host` runs on. The real factory
 * (host/mount/create-image-mounts.ts, branch `mount`) is not on main yet, so this refuses plainly
 * instead of falling back to something that is not lazy. The lead replaces the body with
 * `return createImageMounts({ ... })` once it lands; nothing else in `thaw host` changes.
 * Tests do not use this: they pass their own ImageMounts to startHost.
 */
export async function createMounts(options: HostMountsOptions): Promise<ImageMounts> {
  void options
  throw new ThawError(
    'MOUNTS_NOT_INTEGRATED',
    'lazy image mounts are not built into this thaw yet (host/mount/create-image-mounts.ts is missing); `thaw host` cannot run nodes without them',
    { fault: 'system' },
  )
}
