import { describe, expect, it } from 'vitest'
import {
  BinaryIndex,
  encodeBinaryIndex,
  layoutBinaryIndex,
  openBinaryIndex,
} from '../../../runtime/format/binary-index.ts'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { createZstdCodec } from '../../../runtime/format/codec/zstd.ts'
import type { FsIndex } from '../../../runtime/format/fs-index.ts'
import { FsTree, type FsNode } from '../../../runtime/format/fs-tree.ts'
import { buildFsIndex } from '../../../runtime/format/image-index.ts'
import type { LayerToc } from '../../../runtime/format/layer-toc.ts'
import { writeLayer } from '../../../runtime/format/layer-writer.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { buildTar, chunked, type TarSpec } from '../../support/tar-builder.ts'

async function indexOf(...layers: TarSpec[][]): Promise<FsIndex> {
  const tocs: LayerToc[] = []
  for (const specs of layers) {
    const sink = memorySink()
    tocs.push(await writeLayer(chunked(buildTar(specs)), sink, { compression: 'none', safety: { allowDevices: true } }))
  }
  return buildFsIndex(tocs)
}

const SAMPLE: TarSpec[][] = [
  [
    { name: 'bin', type: 'directory' },
    { name: 'bin/sh', content: 'shell', mode: 0o755 },
    { name: 'bin/ash', type: 'hardlink', linkName: 'bin/sh' },
    { name: 'etc', type: 'directory', mode: 0o750, uid: 3, gid: 4 },
    { name: 'etc/passwd', content: 'root:x:0:0\n', mtime: 1_700_000_000 },
    { name: 'etc/motd', type: 'symlink', linkName: '/usr/share/motd' },
    { name: 'dev', type: 'directory' },
    { name: 'dev/null', type: 'char', devMajor: 1, devMinor: 3 },
    { name: 'dev/fifo', type: 'fifo' },
    { name: 'capped', content: 'x'.repeat(5000), xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2])], ['user.k', Buffer.from('v')]]) },
    { name: 'Zeta', content: 'upper case sorts first' },
    { name: 'été', content: 'non-ASCII name' },
  ],
  [
    { name: 'etc/extra', content: 'second layer' },
    { name: 'bin/.wh.ash' },
  ],
]

describe('binary index', () => {
  it('answers every entry as the JSON index does (round trip through encode and open)', async () => {
    const index = await indexOf(...SAMPLE)
    const tree = new FsTree(index)
    const bin = openBinaryIndex(encodeBinaryIndex(index))
    expect(bin.entryCount).toBe(index.entries.length)
    expect(bin.codec).toBe(index.codec)
    expect(bin.blobs).toEqual(index.blobs)
    expect(bin.totalBytes).toBe(tree.totalBytes)
    for (const e of index.entries) {
      const [a, b] = [tree.lookup(e.path)!, bin.lookup(e.path)!]
      const { ino: _a, ...fromJson } = a
      const { ino: _b, ...fromBinary } = b
      expect(fromBinary, e.path).toEqual(fromJson)
      expect(bin.node(b.ino)!.ino).toBe(b.ino)
      if (e.type === 'directory') expect([...bin.children(b)].sort()).toEqual([...tree.children(a)].sort())
    }
    expect(bin.lookup('/etc//passwd/')!.path).toBe('etc/passwd')
    expect(bin.lookup('etc/nothing')).toBeUndefined()
    expect(bin.lookup('etc/passwd/x')).toBeUndefined()
    expect(bin.child(bin.node(1)!, 'été')!.size).toBe('non-ASCII name'.length)
  })

  it('gives hard links one inode, and a child lookup finds each name', async () => {
    const index = await indexOf([
      { name: 'a', content: 'same' },
      { name: 'b', type: 'hardlink', linkName: 'a' },
      { name: 'c', type: 'hardlink', linkName: 'a' },
    ])
    const bin = openBinaryIndex(encodeBinaryIndex(index))
    const root = bin.node(1)!
    const [a, b, c] = ['a', 'b', 'c'].map((n) => bin.child(root, n)!)
    expect(new Set([a!.ino, b!.ino, c!.ino]).size).toBe(1)
    expect(a!.nlink).toBe(3)
    expect(bin.node(a!.ino)!.path).toBe('a')
  })

  it('keeps a large tree usable: 20 000 entries in nested directories', async () => {
    const specs: TarSpec[] = []
    for (let d = 0; d < 100; d++) {
      specs.push({ name: `d${d}`, type: 'directory' })
      for (let f = 0; f < 199; f++) specs.push({ name: `d${d}/f${f}.js`, content: `${d}/${f}` })
    }
    const index = await indexOf(specs)
    const bin = openBinaryIndex(encodeBinaryIndex(index))
    expect(bin.entryCount).toBe(20_001)
    expect(bin.lookup('d57/f123.js')!.size).toBe('57/123'.length)
    expect(bin.children(bin.lookup('d3')!)).toHaveLength(199)
  })

  describe('refuses corrupt input, with the reason', async () => {
    const index = await indexOf(...SAMPLE)
    const good = layoutBinaryIndex(index)
    const entries = 64 + 96 * index.blobs.length + 56 * index.blobs.reduce((n, b) => n + b.frames.length, 0)
    const rec = (i: number) => entries + 88 * i
    const at = (name: string) => {
      const bin = new BinaryIndex(Buffer.from(good))
      return (bin.lookup(name)!.ino - 1)
    }
    const edit = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good)
      f(b)
      return b
    }
    const cases: [string, Buffer, string | RegExp][] = [
      // the header
      ['wrong magic', edit((b) => b.write('THAWIDX9', 0, 'latin1')), /magic/],
      ['unknown version', edit((b) => b.writeUInt32LE(2, 8)), /version/],
      ['unknown codec', edit((b) => b.writeUInt32LE(7, 12)), /codec/],
      ['truncated by one byte', good.subarray(0, good.length - 1), /header says/],
      ['one byte too many', Buffer.concat([good, Buffer.alloc(1)]), /header says/],
      ['no entries', edit((b) => b.writeUInt32LE(0, 16)), /entries/],
      // blobs and frames
      ['a frame not contiguous with the one before', edit((b) => b.writeBigUInt64LE(1n, 64 + 96 * index.blobs.length + 56)), /contiguous/],
      ['a blob whose size the frames do not cover', edit((b) => b.writeBigUInt64LE(1n << 40n, 64 + 64)), /cover/],
      // the tree
      ['the root named', edit((b) => b.writeUInt16LE(1, rec(0) + 4)), /root/],
      ['an entry whose parent comes after it', edit((b) => b.writeUInt32LE(at('etc/passwd') + 5, rec(at('etc/passwd')) + 8)), /parent/],
      ['a name with a slash', edit((b) => { const off = b.readUInt32LE(rec(at('etc/passwd'))); b[good.length - Number(good.readBigUInt64LE(32)) + off] = 0x2f }), /'\/'|sorted|parent/],
      ['siblings out of order', edit((b) => { const [x, y] = [rec(at('etc/extra')), rec(at('etc/motd'))]; const t = b.readUInt32LE(x); b.writeUInt32LE(b.readUInt32LE(y), x); b.writeUInt32LE(t, y); const l = b.readUInt16LE(x + 4); b.writeUInt16LE(b.readUInt16LE(y + 4), x + 4); b.writeUInt16LE(l, y + 4) }), /sorted/],
      ['an unknown entry type', edit((b) => b.writeUInt8(9, rec(at('etc/passwd')) + 6)), /type/],
      ['a mode beyond 07777', edit((b) => b.writeUInt32LE(0o170000, rec(at('etc/passwd')) + 20)), /mode/],
      ['children past the last entry', edit((b) => b.writeUInt32LE(1_000_000, rec(at('etc')) + 16)), /children|parent/],
      ['content past the end of its blob', edit((b) => b.writeBigUInt64LE(1n << 40n, rec(at('etc/passwd')) + 64)), /outside its blob/],
      ['content in a blob that does not exist', edit((b) => b.writeInt32LE(9, rec(at('etc/passwd')) + 60)), /outside its blob/],
      ['a symlink target outside the string table', edit((b) => b.writeBigUInt64LE(1n << 30n, rec(at('etc/motd')) + 64)), /symlink/],
      ['a hard link to a later entry', edit((b) => b.writeUInt32LE(at('été') + 1, rec(at('capped')) + 36)), /hard link/],
      ['xattrs past the xattr table', edit((b) => b.writeUInt32LE(99, rec(at('capped')) + 72)), /xattrs/],
    ]
    // Records are checked when first read: each case is refused by the time the tree is walked
    // (every entry looked up by name and listed), with the reason and a format error's code.
    const walk = (bytes: Buffer) => {
      const bin = new BinaryIndex(bytes)
      const visit = (dir: FsNode) => {
        for (const name of bin.children(dir)) {
          const node = bin.child(dir, name)!
          if (node.type === 'directory') visit(node)
        }
      }
      visit(bin.node(1)!)
      for (let ino = 1; ino <= bin.entryCount; ino++) bin.node(ino)
    }
    it.each(cases)('%s', (_name, bytes, reason) => {
      expect(() => walk(bytes)).toThrow(reason)
      try {
        walk(bytes)
      } catch (err) {
        expect((err as { code: string }).code).toMatch(/^INDEX_(INVALID|OUT_OF_BOUNDS)$/)
      }
    })

    it('walks the untouched index without a complaint', () => walk(Buffer.from(good)))

    it('opens without reading the entries: a corrupt record is refused when it is read, the rest answers', () => {
      const bytes = edit((b) => b.writeUInt8(9, rec(at('etc/passwd')) + 6))
      const bin = new BinaryIndex(bytes)
      expect(bin.lookup('etc/motd')?.type).toBe('symlink')
      expect(() => bin.lookup('etc/passwd')).toThrow(/unknown type/)
    })

    it('checks the blob digest, then that it is one zstd frame of a bounded size', () => {
      const blob = encodeBinaryIndex(index)
      expect(() => openBinaryIndex(blob, { digest: sha256Of(Buffer.from('other')) })).toThrow(/does not match/)
      expect(openBinaryIndex(blob, { digest: sha256Of(blob) }).entryCount).toBe(index.entries.length)
      expect(() => openBinaryIndex(Buffer.from('not zstd at all'))).toThrow(/zstd/)
      expect(() => openBinaryIndex(createZstdCodec(3).encode(Buffer.from('thawidx\0 but nothing else')))).toThrow(/magic/)
    })
  })
})
