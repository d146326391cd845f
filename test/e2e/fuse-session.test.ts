import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openSync, readdirSync, readFileSync } from 'node:fs'
import { FuseKeeper } from '../../host/fuse/fuse-keeper.ts'
import { loadAddon, mountFuse, type FuseSession } from '../../host/fuse/fuse-session.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { HELLO, memoryFs } from '../support/memory-fs.ts'
import { forceUnmount, runReader } from '../support/mount-process.ts'
import { startProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * thaw's FUSE layer on its own, with a filesystem of five inodes in memory (test/support/memory-fs.ts):
 * what reaches the filesystem, what the kernel is answered, a request that arrives while mount()
 * is settling, and a connection that outlives its server. Readers run in child processes (this
 * process serves the mount).
 */
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
const SERVER = join(import.meta.dirname, '../support/memory-fs-server.ts')

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
    session = await mountFuse(dir, memoryFs(), {
      name: 'thaw-test',
      onError: (m) => errors.push(m),
    })
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
      session = await mountFuse(dir, memoryFs(), { name: 'thaw-test' })
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

  it('a kept connection outlives its server: a read it held and a new lookup wait, and the next server answers both', async () => {
    dir = await tmpDir('thaw-fuse-kept-')
    const socket = join(await tmpDir('thaw-keeper-'), 'keeper.sock')
    const server = (how: string, ...args: string[]) =>
      startProcess(process.execPath, ['--import', 'tsx', SERVER, dir, socket, how, ...args])
    const first = server('mount', 'stall')
    await first.waitFor(/^serving mount/m)
    let settled = false
    const held = runReader('cat', [join(dir, 'later')]).finally(() => (settled = true))
    await first.waitFor(/^a read stalled/m) // the first server read the request and never answers
    await first.kill() // SIGKILL
    const looked = runReader('readlink', [join(dir, 'link')]).finally(() => (settled = true))
    // Without a keeper the kernel ends the connection with the server: both fail at once (ENOTCONN).
    await new Promise((r) => setTimeout(r, 500))
    expect(settled).toBe(false)
    const second = server('adopt')
    try {
      // resendError=0: the kernel queued the request the first server held again.
      await second.waitFor(/^serving adopt resendError=0$/m)
      expect((await held).stdout).toBe(HELLO.toString())
      expect((await looked).stdout).toBe('hello\n')
    } finally {
      await second.stop() // SIGTERM: takes the connection back from the keeper and unmounts
    }
  })

  it('starts the keeper again when it has gone (it exits after a minute holding nothing)', async () => {
    const socket = join(await tmpDir('thaw-keeper-'), 'keeper.sock')
    const keeper = await FuseKeeper.open(socket)
    // The keeper this test started: the process whose command line names its socket.
    const pidOf = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(socket)
          } catch {
            return false
          }
        })
    const first = Number(pidOf())
    process.kill(first, 'SIGKILL')
    while (pidOf() === String(first)) await new Promise((r) => setTimeout(r, 20))
    const fd = openSync('/dev/null', 'r')
    await keeper.store('/kept/here', [fd, fd], { info: {} as never, data: 'x' })
    const listed = loadAddon().keeperCall(socket, 'list', [])
    expect(listed.map((a) => a.text.split('\n')[1])).toContain('/kept/here')
    const second = Number(pidOf())
    expect(second).not.toBe(first)
    keeper.drop('/kept/here') // holding nothing, it exits
  })
})
