import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { constants } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import {
  mountFuse,
  type FuseOps,
  type FuseSession,
  type FuseStat,
} from '../../host/fuse/fuse-session.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { forceUnmount, runReader } from '../support/mount-process.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * thaw's FUSE layer on its own, with a filesystem of five inodes in memory: what reaches the
 * filesystem, what the kernel is answered, and a request that arrives while mount() is settling.
 * Readers run in child processes (this process serves the mount).
 */
const HELLO = Buffer.from('hello, fuse\n')
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

const ops: FuseOps = {
  lookup: (parent, name) => (parent === 1 ? inodes[name] : undefined),
  getattr: (ino) =>
    byIno.get(ino) ??
    (() => {
      throw enoent()
    })(),
  readlink: () => 'hello',
  open: () => ({}),
  read(ino, offset, size) {
    if (ino === 4) throw new Error('the frame store is on fire')
    const bytes = HELLO.subarray(offset, offset + size)
    // A reply given later, from a promise: nothing waits on the reading thread meanwhile.
    return ino === 5 ? new Promise((r) => setTimeout(() => r(bytes), 50)) : bytes
  },
  readdir: () => ({ names: Object.keys(inodes), stats: Object.values(inodes) }),
  getxattr: (ino, name) =>
    ino === 2 && name === 'user.origin' ? Buffer.from('memory') : undefined,
  listxattr: (ino) => (ino === 2 ? ['user.origin'] : []),
  statfs: () => ({ blocks: 1, files: byIno.size }),
}

const PROBE = `
import os, sys, errno
d = sys.argv[1]
def err(f):
    try: f(); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print(open(d + '/hello').read(), end='')
print(os.readlink(d + '/link'), open(d + '/link').read(), end='')
print(open(d + '/later').read(), end='')
print(sorted(os.listdir(d)))
print(os.getxattr(d + '/hello', 'user.origin').decode(), os.listxattr(d + '/hello'))
print(err(lambda: os.stat(d + '/missing')), err(lambda: open(d + '/broken').read()))
print(err(lambda: os.getxattr(d + '/hello', 'user.none')))
`

describe.skipIf(fuseUnavailable)('host/fuse: a session over /dev/fuse', () => {
  let session: FuseSession | undefined
  let dir: string
  afterEach(async () => {
    await session?.close()
    forceUnmount(dir)
  })

  it('answers lookups, reads (also later, from a promise), links, listings and xattrs; errors keep their errno', async () => {
    dir = await tmpDir('thaw-fuse-session-')
    const errors: string[] = []
    session = await mountFuse(dir, ops, { name: 'thaw-test', onError: (m) => errors.push(m) })
    const { stdout } = await runReader('python3', ['-c', PROBE, dir])
    expect(stdout.split('\n')).toEqual([
      'hello, fuse',
      'hello hello, fuse',
      'hello, fuse',
      "['broken', 'hello', 'later', 'link']",
      "memory ['user.origin']",
      'ENOENT EIO',
      'ENODATA',
      '',
    ])
    // A throw without an errno is EIO to the reader and a message to the operator.
    expect(errors.join('\n')).toContain('the frame store is on fire')
    expect(session.stats.reads).toBeGreaterThanOrEqual(3)
    expect(session.stats.opens).toBeGreaterThanOrEqual(4)
  })

  it('answers a request that arrives before mount() has settled', async () => {
    dir = await tmpDir('thaw-fuse-early-')
    // Stats the file in a loop from before the mount exists, so its first request to the new
    // mount can come while the addon's mount is still completing.
    const child = spawn(
      'python3',
      [
        '-c',
        `
import os, sys
while True:
    try: print(os.stat(sys.argv[1] + '/hello').st_size); break
    except FileNotFoundError: pass`,
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    try {
      session = await mountFuse(dir, ops, { name: 'thaw-test' })
      const exited = once(child, 'close')
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the stat never got an answer')), 10_000),
      )
      await Promise.race([exited, timeout])
      expect(out.trim()).toBe(String(HELLO.length))
    } finally {
      child.kill('SIGKILL')
    }
  })
})
