import { readFile } from 'node:fs/promises'
import type { FuseKeeper, KeptSession } from '../fuse/fuse-keeper.ts'
import {
  adoptFuse,
  detachMount,
  mountFuse as mountSession,
  type FuseSession,
} from '../fuse/fuse-session.ts'
import { MountError } from './errors.ts'
import type { ImageFs } from './image-fs.ts'

/**
 * An image's filesystem on thaw's own FUSE layer (host/fuse): read-only, everything the kernel may
 * cache it caches (the content never changes), passthrough where the kernel has it.
 */
export type FuseMount = FuseSession

export interface FuseMountOptions {
  name: string
  warn?: (message: string) => void
  passthrough?: boolean
  /** The kernel's read-ahead at mount, KiB (default 1 MiB; ImageMount.narrowReadAhead). */
  readAheadKb?: number
  /** Hand the connection to this keeper, with `data`, so the mount outlives this process. */
  keep?: { keeper: FuseKeeper; data: unknown }
  /** Serve this session a dead process left with the keeper instead of mounting anew. */
  adopt?: KeptSession
}

export async function mountFuse(
  dir: string,
  fs: ImageFs,
  options: FuseMountOptions,
): Promise<FuseMount> {
  const warn = options.warn ?? (() => {})
  const session = {
    name: `thaw-${options.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`,
    passthrough: options.passthrough,
    readAheadKb: options.readAheadKb,
    keep: options.keep,
    onError: warn,
    onGone: () => warn(`the FUSE connection of ${dir} ended`),
  }
  try {
    return options.adopt
      ? await adoptFuse(options.adopt, fs, session)
      : await mountSession(dir, fs, session)
  } catch (err) {
    throw new MountError('MOUNT_FAILED', (err as Error).message, { cause: err })
  }
}

/** Detaches a FUSE mount left by a dead process (`umount -l`); false if nothing was mounted. */
export async function detachStaleMount(dir: string): Promise<boolean> {
  return detachMount(dir)
}

/** FUSE mountpoints under `root`, from /proc/self/mountinfo (field 5 is the mountpoint). */
export async function fuseMountsUnder(root: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const out: string[] = []
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ')
    const point = left?.split(' ')[4]?.replace(/\\040/g, ' ')
    if (!point || !right?.startsWith('fuse')) continue
    if (point === root || point.startsWith(`${root}/`)) out.push(point)
  }
  return out
}
