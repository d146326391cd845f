import { readFile } from 'node:fs/promises'
import { ThawError } from '../../runtime/errors.ts'
import { runCommand } from '../os/run-command.ts'
import { unescapeMountPath } from './cgroups.ts'

/** mount(8) and umount(8): node has no mount syscall. Each call costs a process (~2 ms). */

/** A size-capped tmpfs for a node's writable layer and sockets (nodev, nosuid). */
export async function mountTmpfs(target: string, sizeBytes: number, signal?: AbortSignal) {
  const options = `size=${sizeBytes},mode=0755,nosuid,nodev`
  await runCommand('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', target], { signal })
}

export interface OverlayDirs {
  /** Read-only lower: the image's root filesystem (a directory or a FUSE mount). */
  lower: string
  upper: string
  work: string
  target: string
}

/**
 * overlayfs with one read-only lower (Documentation/filesystems/overlayfs.rst). The lower is
 * never written: copy-up goes to `upper`. ',' and ':' separate options and layers in the mount
 * data, so paths holding them are refused rather than escaped.
 */
export async function mountOverlay(dirs: OverlayDirs, signal?: AbortSignal) {
  for (const path of [dirs.lower, dirs.upper, dirs.work]) {
    if (/[,:\\\n]/.test(path)) {
      throw new ThawError('MOUNT_PATH_INVALID', `overlay paths cannot hold , : or \\: ${path}`)
    }
  }
  const options = `lowerdir=${dirs.lower},upperdir=${dirs.upper},workdir=${dirs.work},nodev`
  await runCommand('mount', ['-t', 'overlay', '-o', options, 'overlay', dirs.target], { signal })
}

/**
 * Unmounts every mount at or under `path`, deepest first; nothing mounted is not an error.
 * A busy mount is detached lazily (MNT_DETACH): it goes away when its last user does, which is
 * what a dying node's cleanup wants.
 */
export async function unmountAll(path: string): Promise<void> {
  // Re-read after each unmount: a point can hold stacked mounts, and a lazy detach drops children.
  for (let round = 0; round < 64; round++) {
    const target = (await mountsUnder(path))[0]
    if (target === undefined) return
    try {
      await runCommand('umount', [target], { timeoutMs: 30_000 })
    } catch (err) {
      if (!(await mountsUnder(path)).includes(target)) continue
      if (!(err instanceof Error && /busy/i.test(err.message))) throw err
      await runCommand('umount', ['-l', target], { timeoutMs: 30_000 })
    }
  }
  throw new ThawError('UNMOUNT_FAILED', `mounts under ${path} keep coming back`)
}

/** Mount points at or under `path` in this mount namespace, deepest (and latest) first. */
export async function mountsUnder(path: string): Promise<string[]> {
  const prefix = path.endsWith('/') ? path : `${path}/`
  const points = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountPath)
    .filter((p) => p === path || p.startsWith(prefix))
  // Later mounts stack on earlier ones: unmount in reverse order, children before parents.
  return points.reverse().sort((a, b) => b.split('/').length - a.split('/').length)
}
