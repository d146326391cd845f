import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync, linkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isFormatError } from '../../../runtime/format/errors.ts'
import type { TarHeader } from '../../../runtime/format/tar/header.ts'
import { TarParser } from '../../../runtime/format/tar/parser.ts'
import { encodePaxRecord } from '../../../runtime/format/tar/pax.ts'
import { buildTar } from '../../support/tar-builder.ts'
import { tmpDir } from '../../support/tmp.ts'

interface Parsed {
  header: TarHeader
  content: Buffer
}

function parse(tar: Buffer, chunk = 333): Parsed[] {
  const out: Parsed[] = []
  let parts: Buffer[] = []
  const parser = new TarParser({
    entry: (header) => out.push({ header, content: Buffer.alloc(0) }),
    data: (bytes) => parts.push(Buffer.from(bytes)),
    entryEnd: () => {
      out.at(-1)!.content = Buffer.concat(parts)
      parts = []
    },
  })
  for (let i = 0; i < tar.length; i += chunk) parser.write(tar.subarray(i, i + chunk))
  parser.end()
  return out
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (isFormatError(err)) return err.code
    throw err
  }
  return undefined
}

/** One header block (size = content length, content not included) with any typeflag. */
function rawEntry(name: string, typeflag: string, content: Buffer): Buffer {
  const tar = buildTar([{ name, content }], { end: false }).subarray(0, 512)
  tar[156] = typeflag.charCodeAt(0)
  // Recompute the checksum after changing the typeflag.
  tar.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += tar[i]!
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  return tar
}

describe('TarParser', () => {
  it('reads what the writer writes: long names, long link targets, big ids, sub-second and negative mtimes, xattrs, devices', () => {
    const long = 'd/'.repeat(80) + 'ü'.repeat(50) + '.txt'
    const tar = buildTar([
      {
        name: long,
        content: 'x'.repeat(1000),
        uid: 70_000_000,
        gid: 3_000_000,
        mtime: 1_700_000_000,
        mtimeNsec: 123_456_789,
      },
      { name: 'link', type: 'symlink', linkName: '/'.padEnd(150, 'l') },
      { name: 'old', mtime: -2, mtimeNsec: 500_000_000 },
      {
        name: 'attrs',
        xattrs: new Map([
          ['user.a', Buffer.from([0, 1, 2, 255])],
          ['security.capability', Buffer.from('cap')],
        ]),
      },
      { name: 'dev/null', type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 },
      { name: 'suid', mode: 0o4755, uname: 'u'.repeat(40), gname: 'g' },
    ])
    const [a, l, o, x, d, s] = parse(tar)
    expect(a!.header).toMatchObject({
      name: long,
      uid: 70_000_000,
      gid: 3_000_000,
      mtime: 1_700_000_000,
      mtimeNsec: 123_456_789,
      size: 1000,
    })
    expect(a!.content.toString()).toBe('x'.repeat(1000))
    expect(l!.header.linkName).toBe('/'.padEnd(150, 'l'))
    expect(o!.header).toMatchObject({ mtime: -2, mtimeNsec: 500_000_000 })
    expect(x!.header.xattrs).toEqual(
      new Map([
        ['security.capability', Buffer.from('cap')],
        ['user.a', Buffer.from([0, 1, 2, 255])],
      ]),
    )
    expect(d!.header).toMatchObject({ type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 })
    expect(s!.header).toMatchObject({ mode: 0o4755, uname: 'u'.repeat(40), gname: 'g' })
  })

  it('writes the same bytes for the same header (deterministic output)', () => {
    const spec = [
      {
        name: 'a'.repeat(120),
        content: 'hi',
        xattrs: new Map([
          ['user.z', Buffer.from('1')],
          ['user.a', Buffer.from('2')],
        ]),
      },
    ]
    expect(buildTar(spec).equals(buildTar(spec))).toBe(true)
  })

  it('reads GNU tar archives in gnu format (L/K long names) and pax format (xattrs, hard links)', async () => {
    const dir = await tmpDir()
    const root = join(dir, 'root')
    const deep = join(root, 'n'.repeat(120), 'm'.repeat(120))
    mkdirSync(deep, { recursive: true })
    writeFileSync(join(deep, 'file'), 'content')
    linkSync(join(deep, 'file'), join(root, 'hard'))
    symlinkSync('t'.repeat(150), join(root, 'sym'))
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'value', join(root, 'hard')])
    for (const format of ['gnu', 'pax']) {
      const tar = execFileSync('tar', [
        `--format=${format}`,
        '--xattrs',
        '--sort=name',
        '-C',
        root,
        '-cf',
        '-',
        '.',
      ])
      const entries = parse(tar)
      const byName = new Map(
        entries.map((e) => [e.header.name.replace(/^\.\//, '').replace(/\/$/, ''), e]),
      )
      const path = `${'n'.repeat(120)}/${'m'.repeat(120)}/file`
      expect(byName.get('sym')!.header).toMatchObject({
        type: 'symlink',
        linkName: 't'.repeat(150),
      })
      // GNU tar stores the first name it meets as the file and later ones as links to it.
      const file = byName.get('hard')!
      const link = byName.get(path)!
      expect(file.header.type).toBe('file')
      expect(file.content.toString()).toBe('content')
      expect(link.header).toMatchObject({ type: 'hardlink', linkName: './hard' })
      if (format === 'pax') expect(file.header.xattrs.get('user.k')?.toString()).toBe('value')
    }
  })

  it('applies PAX global headers to the entries after them, with per-entry records winning', () => {
    const global = Buffer.concat([
      encodePaxRecord('uid', Buffer.from('4242')),
      encodePaxRecord('gname', Buffer.from('global')),
    ])
    const local = encodePaxRecord('gname', Buffer.from('local'))
    const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)])
    const tar = Buffer.concat([
      rawEntry('g', 'g', global),
      pad(global),
      buildTar([{ name: 'a' }], { end: false }),
      rawEntry('x', 'x', local),
      pad(local),
      buildTar([{ name: 'b' }]),
    ])
    const [a, b] = parse(tar)
    expect(a!.header).toMatchObject({ name: 'a', uid: 4242, gname: 'global' })
    expect(b!.header).toMatchObject({ name: 'b', uid: 4242, gname: 'local' })
  })

  it('reads LIBARCHIVE.xattr records (url-encoded name, base64 value)', () => {
    const rec = encodePaxRecord(
      'LIBARCHIVE.xattr.user.sp%20ace',
      Buffer.from(Buffer.from([1, 2, 3]).toString('base64')),
    )
    const pad = Buffer.alloc((512 - (rec.length % 512)) % 512)
    const tar = Buffer.concat([rawEntry('x', 'x', rec), rec, pad, buildTar([{ name: 'f' }])])
    expect(parse(tar)[0]!.header.xattrs.get('user.sp ace')).toEqual(Buffer.from([1, 2, 3]))
  })

  it('reads GNU base-256 numbers (sizes and ids beyond octal fields)', () => {
    const tar = buildTar([{ name: 'f', content: 'abc', uid: 5 }])
    tar.fill(0, 108, 116)
    tar[108] = 0x80
    tar.writeUIntBE(2 ** 40, 110, 6)
    tar.fill(0x20, 148, 156)
    let sum = 0
    for (let i = 0; i < 512; i++) sum += tar[i]!
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
    expect(parse(tar)[0]!.header.uid).toBe(2 ** 40)
  })

  it('accepts an archive that ends after one zero block, as GNU tar does', () => {
    const tar = buildTar([{ name: 'f', content: 'x' }])
    expect(parse(tar.subarray(0, tar.length - 512))).toHaveLength(1)
  })

  // Archives the parser refuses, each with the reason a conversion records.
  const bad: [string, Buffer, string][] = [
    // a flipped byte in a header: the checksum does not match
    [
      'checksum mismatch',
      (() => {
        const t = buildTar([{ name: 'f' }])
        t[0] = 0x41
        return t
      })(),
      'TAR_HEADER_INVALID',
    ],
    // the stream stops in the middle of a file's content
    [
      'truncated content',
      buildTar([{ name: 'f', content: 'x'.repeat(2000) }]).subarray(0, 1024),
      'TAR_TRUNCATED',
    ],
    // GNU sparse entry ('S'): holes cannot be represented faithfully
    [
      'GNU sparse file',
      Buffer.concat([rawEntry('s', 'S', Buffer.alloc(0)), Buffer.alloc(1024)]),
      'TAR_UNSUPPORTED_ENTRY',
    ],
    // PAX sparse records (GNU tar --sparse --format=pax)
    [
      'PAX sparse file',
      (() => {
        const r = encodePaxRecord('GNU.sparse.major', Buffer.from('1'))
        return Buffer.concat([
          rawEntry('x', 'x', r),
          r,
          Buffer.alloc(512 - r.length),
          buildTar([{ name: 'f' }]),
        ])
      })(),
      'TAR_UNSUPPORTED_ENTRY',
    ],
    // multi-volume continuation
    [
      'multi-volume entry',
      Buffer.concat([rawEntry('m', 'M', Buffer.alloc(0)), Buffer.alloc(1024)]),
      'TAR_UNSUPPORTED_ENTRY',
    ],
    // a PAX header claiming 2 MiB: refused before buffering it
    [
      'oversized PAX header',
      (() => {
        const t = rawEntry('x', 'x', Buffer.alloc(0))
        t.write('00010000000\0', 124, 'latin1')
        t.fill(0x20, 148, 156)
        let s = 0
        for (let i = 0; i < 512; i++) s += t[i]!
        t.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
        return t
      })(),
      'TAR_HEADER_TOO_LARGE',
    ],
    // a malformed PAX record (length does not match)
    [
      'malformed PAX record',
      (() => {
        const r = Buffer.from('99 path=x\n')
        return Buffer.concat([
          rawEntry('x', 'x', r),
          r,
          Buffer.alloc(512 - r.length),
          buildTar([{ name: 'f' }]),
        ])
      })(),
      'TAR_HEADER_INVALID',
    ],
    // a non-octal digit in the size field
    [
      'non-octal size',
      (() => {
        const t = buildTar([{ name: 'f' }])
        t.write('0000000009z\0', 124, 'latin1')
        t.fill(0x20, 148, 156)
        let s = 0
        for (let i = 0; i < 512; i++) s += t[i]!
        t.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
        return t
      })(),
      'TAR_HEADER_INVALID',
    ],
  ]
  it.each(bad)('refuses an archive with a %s', (_name, tar, code) => {
    expect(codeOf(() => parse(tar))).toBe(code)
  })
})
