import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { isFormatError } from '../../../runtime/format/errors.ts'
import { writeLayer } from '../../../runtime/format/layer-writer.ts'
import { buildTar, chunked, type TarSpec } from '../../support/tar-builder.ts'
import { tmpDir } from '../../support/tmp.ts'

// Layers a conversion refuses, each with the code and entry it reports. The converter must refuse
// them before writing anything for the offending entry, and never writes outside its sink.
const escape = `thaw-escape-${process.pid}`
const table: [string, TarSpec[], string, string][] = [
  // an absolute path would be extracted over the host's root by a naive tool
  [
    'an absolute path',
    [{ name: `/tmp/${escape}`, content: 'x' }],
    'TAR_UNSAFE_PATH',
    `/tmp/${escape}`,
  ],
  // `..` climbs out of the root
  [
    'a path with ..',
    [{ name: `a/../../${escape}`, content: 'x' }],
    'TAR_UNSAFE_PATH',
    `a/../../${escape}`,
  ],
  // a symlink to /etc, then a file written through it (dir -> /etc, dir/passwd)
  [
    'a path through a symlink of the same layer',
    [
      { name: 'dir', type: 'symlink', linkName: '/etc' },
      { name: 'dir/passwd', content: 'x' },
    ],
    'TAR_SYMLINK_ESCAPE',
    'dir/passwd',
  ],
  // the same through a relative symlink that climbs out
  [
    'a path through a relative symlink',
    [
      { name: 'up', type: 'symlink', linkName: '../../..' },
      { name: 'up/tmp/x', content: 'x' },
    ],
    'TAR_SYMLINK_ESCAPE',
    'up/tmp/x',
  ],
  // a file, then a path that treats it as a directory
  [
    'a path under a regular file',
    [
      { name: 'f', content: 'x' },
      { name: 'f/g', content: 'y' },
    ],
    'TAR_PARENT_NOT_DIRECTORY',
    'f/g',
  ],
  // the same path twice: which one wins depends on the extractor
  [
    'a duplicate entry',
    [
      { name: 'a', content: '1' },
      { name: './a', content: '2' },
    ],
    'TAR_DUPLICATE_ENTRY',
    './a',
  ],
  // a block device (a disk) is not allowed by default
  [
    'a block device',
    [{ name: 'sda', type: 'block', devMajor: 8, devMinor: 0 }],
    'TAR_DEVICE_NOT_ALLOWED',
    'sda',
  ],
  // a char device other than the 0/0 whiteout
  [
    'a char device',
    [{ name: 'dev/mem', type: 'char', devMajor: 1, devMinor: 1 }],
    'TAR_DEVICE_NOT_ALLOWED',
    'dev/mem',
  ],
  // a hard link to a path that is not in the layer before it
  [
    'a hard link to a missing entry',
    [{ name: 'l', type: 'hardlink', linkName: 'nowhere' }],
    'TAR_HARDLINK_INVALID',
    'l',
  ],
  // a hard link that escapes the root
  [
    'a hard link outside the root',
    [{ name: 'l', type: 'hardlink', linkName: '../../etc/shadow' }],
    'TAR_HARDLINK_INVALID',
    'l',
  ],
  // a hard link to a directory
  [
    'a hard link to a directory',
    [
      { name: 'd', type: 'directory' },
      { name: 'l', type: 'hardlink', linkName: 'd' },
    ],
    'TAR_HARDLINK_INVALID',
    'l',
  ],
  // a name component longer than NAME_MAX
  [
    'a component over 255 bytes',
    [{ name: 'x'.repeat(256), content: '' }],
    'TAR_NAME_TOO_LONG',
    'x'.repeat(256),
  ],
  // a path longer than PATH_MAX
  [
    'a path over 4096 bytes',
    [{ name: 'd/'.repeat(2100) + 'f', content: '' }],
    'TAR_NAME_TOO_LONG',
    ('d/'.repeat(2100) + 'f').slice(0, 200),
  ],
  // an xattr value over XATTR_SIZE_MAX
  [
    'an oversized xattr',
    [{ name: 'f', xattrs: new Map([['user.big', Buffer.alloc(65 * 1024)]]) }],
    'TAR_HEADER_TOO_LARGE',
    'f',
  ],
  // a whiteout of `..`
  ['a whiteout of ..', [{ name: 'a/.wh...', content: '' }], 'TAR_UNSAFE_PATH', 'a/.wh...'],
  // the root replaced by a symlink
  [
    'a root that is not a directory',
    [{ name: './', type: 'symlink', linkName: '/' }],
    'TAR_UNSAFE_PATH',
    './',
  ],
]

describe('layer safety checks', () => {
  it.each(table)('refuses %s', async (_what, specs, code, entry) => {
    const cwd = await tmpDir()
    const sink = memorySink()
    const before = process.cwd()
    process.chdir(cwd)
    let error: unknown
    try {
      await writeLayer(chunked(buildTar(specs)), sink, { compression: 'none' })
    } catch (err) {
      error = err
    } finally {
      process.chdir(before)
    }
    expect(isFormatError(error, code as never), String(error)).toBe(true)
    expect((error as { entry?: string }).entry).toBe(entry)
    expect((error as { fault?: string }).fault).toBe('user')
    expect(readdirSync(cwd)).toEqual([])
    expect(existsSync(join('/tmp', escape))).toBe(false)
  })

  it('accepts devices when allowed, the 0/0 whiteout device always, and absolute symlink targets', async () => {
    const tar = buildTar([
      { name: 'dev', type: 'directory' },
      { name: 'dev/null', type: 'char', devMajor: 1, devMinor: 3 },
      { name: 'wh', type: 'char', devMajor: 0, devMinor: 0 },
      { name: 'x', type: 'symlink', linkName: '/etc/alternatives/x' },
    ])
    await expect(
      writeLayer(chunked(tar), memorySink(), { compression: 'none' }),
    ).rejects.toMatchObject({ code: 'TAR_DEVICE_NOT_ALLOWED', entry: 'dev/null' })
    const toc = await writeLayer(chunked(tar), memorySink(), {
      compression: 'none',
      safety: { allowDevices: true },
    })
    expect(toc.entries.map((e) => e.path)).toEqual(['dev', 'dev/null', 'wh', 'x'])
  })

  it('refuses more entries than the limit', async () => {
    const tar = buildTar([{ name: 'a' }, { name: 'b' }, { name: 'c' }])
    await expect(
      writeLayer(chunked(tar), memorySink(), { compression: 'none', safety: { maxEntries: 2 } }),
    ).rejects.toMatchObject({ code: 'TAR_TOO_MANY_ENTRIES' })
  })
})
