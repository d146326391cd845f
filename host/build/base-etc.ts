import { chmod, chown, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The unprivileged user every base image has, for images whose config says `User: app`. */
export const APP_USER = { name: 'app', uid: 1000, gid: 1000, home: '/home/app' } as const

/**
 * The minimal /etc and top-level directories of a hand-built base: passwd and group with root,
 * `app` (1000) and nobody; nsswitch.conf reading only files (and DNS for hosts); hosts with
 * localhost; an empty resolv.conf (nodes have no DNS unless an app brings its own); /tmp with the
 * sticky bit; /dev, /proc and /sys as empty mount points for the runtime.
 */
export async function writeBaseEtc(rootfs: string): Promise<void> {
  const dirs: [string, number][] = [
    ['etc', 0o755],
    ['tmp', 0o1777],
    ['dev', 0o755],
    ['proc', 0o755],
    ['sys', 0o755],
    ['root', 0o700],
    ['home', 0o755],
    [APP_USER.home.slice(1), 0o755],
    ['usr/local/bin', 0o755],
  ]
  for (const [dir, mode] of dirs) {
    await mkdir(join(rootfs, dir), { recursive: true })
    await chmod(join(rootfs, dir), mode) // mkdir's mode is masked by the umask
  }
  await chown(join(rootfs, APP_USER.home), APP_USER.uid, APP_USER.gid)
  const files: Record<string, string> = {
    passwd: [
      'root:x:0:0:root:/root:/bin/sh',
      `${APP_USER.name}:x:${APP_USER.uid}:${APP_USER.gid}:${APP_USER.name}:${APP_USER.home}:/bin/sh`,
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
    ].join('\n'),
    group: ['root:x:0:', `${APP_USER.name}:x:${APP_USER.gid}:`, 'nogroup:x:65534:'].join('\n'),
    'nsswitch.conf': ['passwd: files', 'group: files', 'shadow: files', 'hosts: files dns'].join(
      '\n',
    ),
    hosts: ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'].join('\n'),
    'resolv.conf': '',
  }
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(rootfs, 'etc', name), text === '' ? '' : `${text}\n`, { mode: 0o644 })
  }
}
