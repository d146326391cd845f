import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { debianLayout } from '../support/debian-rootfs.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { type MountProcess, runReader, startMount } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { diffSnapshots, snapshotDisk } from '../support/tree-snapshot.ts'
import { umociUnpack } from '../support/umoci-image.ts'

// A real Debian minbase root filesystem (debootstrap from Debian's mirror, cached under
// /var/tmp/thaw-cache by test/support/debian-rootfs.ts) as a one-layer image. Built here when it
// is missing (minutes, once per machine); skipped only where debootstrap or the mirror is not there.
const layout = await debianLayout()
if (layout.skipped) console.warn(`skipping mount-debian: ${layout.skipped}`)
const LAYOUT = layout.path!

/** `sha256sum` of every regular file under `root`, sorted, computed by child processes. */
async function contentHashes(root: string): Promise<string> {
  const script = 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum'
  return (await runReader('sh', ['-c', script, 'sh', root])).stdout
}

describe.skipIf(fuseUnavailable || layout.skipped)(
  'thaw mount: a real Debian root filesystem',
  () => {
    let registry: TestRegistry
    let image: PushedStreamingImage
    let rootfs: string
    let mount: MountProcess
    let dir: string

    beforeAll(async () => {
      registry = await startDistribution()
      dir = await tmpDir('thaw-mount-debian-')
      image = await pushStreamingImage({
        registry: registry.url,
        repository: 'debian/minbase',
        layout: LAYOUT,
        tag: 'debian',
        framing: { safety: { allowDevices: true } },
      })
      rootfs = await umociUnpack(LAYOUT, 'debian', join(dir, 'unpacked'))
      mount = await startMount({
        reference: image.reference,
        dir: join(dir, 'mnt'),
        cache: join(dir, 'cache'),
        args: ['--no-background'],
      })
    }, 300_000)
    afterAll(async () => {
      await mount?.stop()
      await registry?.stop()
    })

    it('shows every path as umoci unpacks it: metadata, listings, links, xattrs and content', async () => {
      const inLayers = new Set(image.index.entries.filter((e) => e.mtime !== 0).map((e) => e.path))
      const want = snapshotDisk(rootfs, { content: false })
      const got = snapshotDisk(mount.dir, { content: false })
      expect(diffSnapshots(want, got, (p) => p === '' || !inLayers.has(p))).toEqual([])
      expect(got.size).toBeGreaterThan(5000)
      expect(await contentHashes(mount.dir)).toBe(await contentHashes(rootfs))
    }, 300_000)

    it('runs a process chrooted into the mount, with the same output as from the unpacked tree', async () => {
      const script =
        'cat /etc/debian_version; id -u; ls /usr/bin | wc -l; sha256sum /bin/bash; dpkg-query -W -f "${Package}\\n" | wc -l'
      const fromMount = await runReader('chroot', [mount.dir, '/bin/bash', '-c', script])
      const fromDisk = await runReader('chroot', [rootfs, '/bin/bash', '-c', script])
      expect(fromMount.stdout).toBe(fromDisk.stdout)
      expect(fromMount.stdout).toMatch(/^12\.\d+\n0\n/)
    })

    it('runs a process in an overlay with a writable upper over the mount', async () => {
      const o = join(dir, 'overlay')
      const [upper, work, merged] = ['upper', 'work', 'merged'].map((n) => join(o, n)) as [
        string,
        string,
        string,
      ]
      for (const d of [upper, work, merged]) await mkdir(d, { recursive: true })
      await runReader('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${mount.dir},upperdir=${upper},workdir=${work}`,
        merged,
      ])
      try {
        const { stdout } = await runReader('chroot', [
          merged,
          '/bin/bash',
          '-c',
          'echo written > /etc/thaw-test && cat /etc/thaw-test /etc/debian_version && rm /etc/hostname && ls /etc/hostname 2>&1 || true',
        ])
        expect(stdout).toMatch(/^written\n12\.\d+\n.*No such file or directory/s)
        // the writes went to the upper; the lower (the FUSE mount) is unchanged
        expect(existsSync(join(upper, 'etc', 'thaw-test'))).toBe(true)
        expect(existsSync(join(mount.dir, 'etc', 'hostname'))).toBe(
          existsSync(join(rootfs, 'etc', 'hostname')),
        )
      } finally {
        await runReader('umount', [merged]).catch(() => runReader('umount', ['-l', merged]))
      }
    })
  },
)
