import { lstat, readFile, readlink } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'

const MAX_LINKS = 40
const MAX_BYTES = 4 * 1024 * 1024

/**
 * Reads `path` as a process chrooted at `root` would: symlinks (absolute or relative) and `..`
 * resolve inside `root`, never above it. An image whose /etc/passwd is a symlink to
 * /etc/shadow must not make the host read its own /etc/shadow. Returns undefined when the file
 * does not exist. Async on purpose: `root` may be a FUSE mount served by this process.
 */
export async function readFileInRoot(root: string, path: string): Promise<Buffer | undefined> {
  const resolved = await resolveInRoot(root, path)
  if (resolved === undefined) return undefined
  const info = await lstat(join(root, resolved))
  if (!info.isFile()) return undefined
  if (info.size > MAX_BYTES) {
    throw new ThawError(
      'IMAGE_FILE_TOO_LARGE',
      `${path} in the image is larger than ${MAX_BYTES} bytes`,
      {
        fault: 'user',
      },
    )
  }
  return readFile(join(root, resolved))
}

/** The path of `path` inside `root` with every symlink resolved, or undefined if missing. */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const pending = path.split('/').filter(Boolean)
  const done: string[] = []
  let links = 0
  while (pending.length > 0) {
    const part = pending.shift()!
    if (part === '.') continue
    if (part === '..') {
      done.pop() // `..` at the root stays at the root
      continue
    }
    const candidate = `/${[...done, part].join('/')}`
    const info = await lstat(join(root, candidate)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined
      throw err
    })
    if (!info) return undefined
    if (!info.isSymbolicLink()) {
      done.push(part)
      continue
    }
    if (++links > MAX_LINKS) {
      throw new ThawError(
        'IMAGE_SYMLINK_LOOP',
        `too many symlinks resolving ${path} in the image`,
        {
          fault: 'user',
        },
      )
    }
    const target = await readlink(join(root, candidate))
    if (posix.isAbsolute(target)) done.length = 0
    pending.unshift(...target.split('/').filter(Boolean))
  }
  return `/${done.join('/')}`
}
