import { constants } from 'node:fs'
import type { FuseOps, FuseStat } from '../../host/fuse/fuse-session.ts'

/**
 * A filesystem of five inodes in memory, for tests of the FUSE layer on its own:
 * `hello` and `later` hold HELLO (`later` answers from a promise, 50 ms on), `link` points to
 * `hello`, reading `broken` throws an error without an errno. With `stall`, reads of `later` never
 * answer (a server that dies with a request in hand).
 */
export const HELLO = Buffer.from('hello, fuse\n')

const stat = (ino: number, mode: number, size = 0): FuseStat => ({
  ino,
  mode,
  nlink: 1,
  uid: 0,
  gid: 0,
  rdev: 0,
  size,
  mtime: 1_700_000_000,
  mtimeNsec: 0,
})
const inodes: Record<string, FuseStat> = {
  hello: stat(2, constants.S_IFREG | 0o644, HELLO.length),
  link: stat(3, constants.S_IFLNK | 0o777, 5),
  broken: stat(4, constants.S_IFREG | 0o644, 10),
  later: stat(5, constants.S_IFREG | 0o644, HELLO.length),
}
const root = stat(1, constants.S_IFDIR | 0o755)
const byIno = new Map([root, ...Object.values(inodes)].map((s) => [s.ino, s]))
const enoent = () => Object.assign(new Error('no such inode'), { code: 'ENOENT' })

export function memoryFs(options: { stall?: boolean; onStall?: () => void } = {}): FuseOps {
  return {
    lookup: (parent, name) => (parent === 1 ? inodes[name] : undefined),
    getattr: (ino) => {
      const s = byIno.get(ino)
      if (!s) throw enoent()
      return s
    },
    readlink: () => 'hello',
    open: () => ({}),
    read(ino, offset, size) {
      if (ino === 4) throw new Error('the frame store is on fire')
      const bytes = HELLO.subarray(offset, offset + size)
      if (ino !== 5) return bytes
      if (options.stall) {
        options.onStall?.()
        return new Promise(() => {})
      }
      // A reply given later, from a promise: nothing waits on the reading thread meanwhile.
      return new Promise((r) => setTimeout(() => r(bytes), 50))
    },
    readdir: () => ({ names: Object.keys(inodes), stats: Object.values(inodes) }),
    getxattr: (ino, name) =>
      ino === 2 && name === 'user.origin' ? Buffer.from('memory') : undefined,
    listxattr: (ino) => (ino === 2 ? ['user.origin'] : []),
    statfs: () => ({ blocks: 1, files: byIno.size }),
  }
}
