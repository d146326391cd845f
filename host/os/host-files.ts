import { copyFile, lstat, mkdir, readlink, symlink, stat, constants } from 'node:fs/promises'
import { dirname, isAbsolute, join, posix } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { runCommand } from './run-command.ts'

/**
 * Copying the machine's own programs into a root filesystem: a binary, the shared libraries the
 * dynamic loader would map for it, and every symlink on the way (Debian 12 is merged-/usr:
 * /lib -> usr/lib, /bin -> usr/bin; libstdc++.so.6 -> libstdc++.so.6.0.30), so paths that work
 * on the host work the same inside the image.
 */

/**
 * The absolute paths in `ldd` output: `name => /path (0x…)` and the loader's `/path (0x…)`.
 * linux-vdso is in the kernel, not a file. `not found` is an error: the binary would not start.
 */
export function parseLdd(output: string): string[] {
  const paths: string[] = []
  for (const raw of output.split('\n')) {
    const line = raw.trim()
    if (line === '' || /^linux-(vdso|gate)\.so/.test(line)) continue
    if (/statically linked|not a dynamic executable/.test(line)) continue
    const missing = line.match(/^(\S+) => not found/)
    if (missing) throw new ThawError('LIBRARY_NOT_FOUND', `shared library ${missing[1]} not found`)
    const m = line.match(/^(?:\S+ => )?(\/\S+) \(0x[0-9a-f]+\)$/)
    if (m) paths.push(m[1]!)
  }
  return paths
}

/** The shared libraries (and the dynamic loader) `binary` needs, as absolute host paths. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  try {
    return parseLdd((await runCommand('ldd', [binary], { timeoutMs: 30_000 })).stdout)
  } catch (err) {
    // ldd exits 1 for static binaries, printing "not a dynamic executable".
    if (err instanceof Error && /not a dynamic executable/.test(err.message)) return []
    throw err
  }
}

/**
 * Copies the host file at `hostPath` to the same path under `rootfs`, recreating each symlink
 * met on the way (with its original target, absolute or relative: inside the image, absolute
 * targets resolve against the image's root, where the copy puts them). Directories get the
 * host's mode. Existing entries are kept, so copying many files shares their parents.
 */
export async function copyHostPath(hostPath: string, rootfs: string, hops = 0): Promise<void> {
  if (!isAbsolute(hostPath)) throw new Error(`copyHostPath needs an absolute path: ${hostPath}`)
  if (hops > 40) throw new ThawError('SYMLINK_LOOP', `too many symlinks resolving ${hostPath}`)
  const parts = posix.normalize(hostPath).split('/').filter(Boolean)
  let current = '/'
  for (const [i, part] of parts.entries()) {
    const next = posix.join(current, part)
    const info = await lstat(next)
    const target = join(rootfs, next)
    if (info.isSymbolicLink()) {
      const link = await readlink(next)
      await ensureSymlink(target, link)
      const resolved = isAbsolute(link) ? link : posix.join(current, link)
      return copyHostPath(posix.join(resolved, ...parts.slice(i + 1)), rootfs, hops + 1)
    }
    if (i < parts.length - 1 || info.isDirectory()) {
      await mkdir(target, { mode: info.mode & 0o7777 }).catch(ignoreExists)
    } else {
      await copyFile(next, target, constants.COPYFILE_FICLONE)
    }
    current = next
  }
}

/** Copies a binary and every shared library it needs (see `copyHostPath`). */
export async function copyBinaryWithLibraries(binary: string, rootfs: string): Promise<string[]> {
  const files = [binary, ...(await sharedLibraries(binary))]
  for (const file of files) await copyHostPath(file, rootfs)
  return files
}

async function ensureSymlink(path: string, target: string): Promise<void> {
  const existing = await readlink(path).catch(() => undefined)
  if (existing === target) return
  await mkdir(dirname(path), { recursive: true })
  await symlink(target, path)
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err
}

/** True when `path` exists (following symlinks). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
