import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveImageUser, resolveUser } from '../../../host/sandbox/image-user.ts'
import { isThawError } from '../../../runtime/errors.ts'
import { tmpDir } from '../../support/tmp.ts'

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'svc:x:1001:1001::/srv:/bin/false',
  'broken line',
  'nohome:x:1002:1002:::/bin/sh',
].join('\n')
const GROUP = [
  'root:x:0:',
  'app:x:1000:',
  'svc:x:1001:',
  'docker:x:999:app,svc',
  'audio:x:29:app',
  'web:x:33:',
].join('\n')

describe('resolveUser', () => {
  it.each([
    // empty: root, home from passwd
    ['', { uid: 0, gid: 0, additionalGids: [], home: '/root' }],
    [undefined, { uid: 0, gid: 0, additionalGids: [], home: '/root' }],
    // a name: its uid, primary gid, home and the groups that list it
    ['app', { uid: 1000, gid: 1000, additionalGids: [999, 29], home: '/home/app' }],
    // a uid that is in passwd: the same as its name
    ['1001', { uid: 1001, gid: 1001, additionalGids: [999], home: '/srv' }],
    // a uid that is not: gid 0, home /
    ['4242', { uid: 4242, gid: 0, additionalGids: [], home: '/' }],
    // uid:gid, neither needs to exist
    ['4242:4343', { uid: 4242, gid: 4343, additionalGids: [], home: '/' }],
    // name:group by name overrides the primary group; the primary is not repeated
    ['app:web', { uid: 1000, gid: 33, additionalGids: [999, 29], home: '/home/app' }],
    ['app:docker', { uid: 1000, gid: 999, additionalGids: [29], home: '/home/app' }],
    // uid:group name
    ['0:web', { uid: 0, gid: 33, additionalGids: [], home: '/root' }],
    // an empty home field means /
    ['nohome', { uid: 1002, gid: 1002, additionalGids: [], home: '/' }],
  ])('resolves %j', (user, expected) => {
    expect(resolveUser(user, PASSWD, GROUP)).toEqual(expected)
  })

  it.each([
    // a name not in passwd
    ['ghost', 'IMAGE_USER_UNKNOWN'],
    // a group name not in group
    ['app:ghosts', 'IMAGE_GROUP_UNKNOWN'],
    // too many colons
    ['app:app:app', 'IMAGE_USER_INVALID'],
    // empty parts
    [':1000', 'IMAGE_USER_INVALID'],
    ['1000:', 'IMAGE_USER_INVALID'],
  ])('refuses %j with %s, a user fault', (user, code) => {
    let caught: unknown
    try {
      resolveUser(user, PASSWD, GROUP)
    } catch (err) {
      caught = err
    }
    expect(isThawError(caught, code)).toBe(true)
    expect((caught as { fault: string }).fault).toBe('user')
  })

  it('works without /etc/passwd for numeric users only', () => {
    expect(resolveUser('7:8', '', '')).toEqual({ uid: 7, gid: 8, additionalGids: [], home: '/' })
    expect(() => resolveUser('app', '', '')).toThrow(/not in the image's \/etc\/passwd/)
  })
})

describe('resolveImageUser', () => {
  it('reads passwd and group from the image root, not the host', async () => {
    const root = await tmpDir()
    await mkdir(join(root, 'etc'))
    await writeFile(join(root, 'etc/passwd'), 'imageonly:x:321:654::/img:/bin/sh\n')
    await writeFile(join(root, 'etc/group'), 'g:x:654:\n')
    expect(await resolveImageUser(root, 'imageonly')).toEqual({
      uid: 321,
      gid: 654,
      additionalGids: [],
      home: '/img',
    })
    await expect(resolveImageUser(root, 'root')).rejects.toMatchObject({
      code: 'IMAGE_USER_UNKNOWN',
    })
  })

  it('resolves an absolute /etc/passwd symlink inside the image root, never on the host', async () => {
    const root = await tmpDir()
    await mkdir(join(root, 'etc'))
    await mkdir(join(root, 'data'))
    await writeFile(join(root, 'data/users'), 'linked:x:5:5::/:/bin/sh\n')
    await symlink('/data/users', join(root, 'etc/passwd'))
    await symlink('/etc/group', join(root, 'etc/group')) // a loop onto itself inside the image
    await expect(resolveImageUser(root, 'linked')).rejects.toMatchObject({
      code: 'IMAGE_SYMLINK_LOOP',
    })
    await writeFile(join(root, 'data/groups'), '')
    await import('node:fs/promises').then((fs) => fs.unlink(join(root, 'etc/group')))
    await symlink('../../../../../../data/groups', join(root, 'etc/group'))
    expect((await resolveImageUser(root, 'linked')).uid).toBe(5)
  })
})
