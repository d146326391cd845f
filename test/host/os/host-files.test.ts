import { lstat, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { copyHostPath, parseLdd } from '../../../host/os/host-files.ts'
import { tmpDir } from '../../support/tmp.ts'

describe('parseLdd', () => {
  it('lists libraries and the loader, not the vDSO', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd5f5f0000)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0cdd800000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0cdd61e000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f0cddbe7000)',
    ].join('\n')
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ])
  })

  it('returns nothing for static binaries and fails on a missing library', () => {
    expect(parseLdd('\tstatically linked\n')).toEqual([])
    expect(() => parseLdd('\tlibgone.so.1 => not found\n')).toThrow(/libgone\.so\.1 not found/)
  })
})

describe('copyHostPath', () => {
  it('copies a file under the same path, recreating the symlinks on the way', async () => {
    const rootfs = await tmpDir()
    // /bin/sh on Debian 12: /bin -> usr/bin, /usr/bin/sh -> dash
    await copyHostPath('/bin/sh', rootfs)
    const bin = await lstat(join(rootfs, 'bin'))
    if (bin.isSymbolicLink())
      expect(await readlink(join(rootfs, 'bin'))).toBe(await readlink('/bin'))
    const sh = await lstat(join(rootfs, 'bin/sh'))
    expect(sh.isFile() || sh.isSymbolicLink()).toBe(true)
    const { realpath } = await import('node:fs/promises')
    const real = await realpath('/bin/sh')
    expect((await lstat(join(rootfs, real))).isFile()).toBe(true)
  })
})
