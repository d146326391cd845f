import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { readFileInRoot, resolveInRoot } from '../../../host/sandbox/read-file-in-root.ts'
import { tmpDir } from '../../support/tmp.ts'

describe('readFileInRoot', () => {
  let root: string
  let outside: string
  beforeAll(async () => {
    outside = await tmpDir()
    await writeFile(join(outside, 'secret'), 'host secret')
    root = await tmpDir()
    await mkdir(join(root, 'etc/deep'), { recursive: true })
    await writeFile(join(root, 'etc/real'), 'in image')
    await symlink('/etc/real', join(root, 'etc/abs'))
    await symlink('deep/../real', join(root, 'etc/rel'))
    await symlink(join(outside, 'secret'), join(root, 'etc/host-abs'))
    await symlink(
      '../../../../../../../../..' + join(outside, 'secret'),
      join(root, 'etc/host-rel'),
    )
    await symlink('/etc', join(root, 'etc-link'))
  })

  it.each([
    // a plain file
    ['/etc/real', 'in image'],
    // an absolute symlink resolves against the image root
    ['/etc/abs', 'in image'],
    // a relative one with .. inside the image
    ['/etc/rel', 'in image'],
    // a symlinked directory on the way
    ['/etc-link/real', 'in image'],
    // .. above the root stays at the root
    ['/../../etc/real', 'in image'],
  ])('reads %s', async (path, text) => {
    expect((await readFileInRoot(root, path))?.toString()).toBe(text)
  })

  it.each([
    // an absolute symlink to a host path: that path inside the image, which does not exist
    ['/etc/host-abs'],
    // climbing out with ..: clamped at the image root
    ['/etc/host-rel'],
    // missing
    ['/etc/missing'],
    // a directory is not a file
    ['/etc/deep'],
  ])('does not read %s from outside the image', async (path) => {
    expect(await readFileInRoot(root, path)).toBeUndefined()
  })

  it('resolves paths to their place inside the root', async () => {
    expect(await resolveInRoot(root, '/etc-link/abs')).toBe('/etc/real')
  })
})
