import { describe, expect, it } from 'vitest'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { fileRangeSource } from '../../../runtime/format/file-range-source.ts'
import { buildFsIndex } from '../../../runtime/format/image-index.ts'
import { encodeFsIndex, parseFsIndex } from '../../../runtime/format/index-codec.ts'
import type { LayerToc } from '../../../runtime/format/layer-toc.ts'
import { writeLayer } from '../../../runtime/format/layer-writer.ts'
import { openImage, type RangeSource } from '../../../runtime/format/reader.ts'
import { buildTar, chunked, type TarSpec } from '../../support/tar-builder.ts'

async function image(...layers: TarSpec[][]) {
  const blobs: Buffer[] = []
  const tocs: LayerToc[] = []
  for (const specs of layers) {
    const sink = memorySink()
    tocs.push(await writeLayer(chunked(buildTar(specs)), sink, { compression: 'none' }))
    blobs.push(sink.bytes())
  }
  const index = parseFsIndex(encodeFsIndex(buildFsIndex(tocs)))
  const source: RangeSource = {
    read: async (blob, offset, length) => blobs[blob.index]!.subarray(offset, offset + length),
  }
  return { index, reader: openImage(index, source), blobs }
}

const paths = (r: Awaited<ReturnType<typeof image>>) => r.index.entries.map((e) => e.path)

describe('buildFsIndex', () => {
  it('removes a whited-out file and a whited-out directory with everything under it', async () => {
    const img = await image(
      [
        { name: 'a', type: 'directory' },
        { name: 'a/x', content: '1' },
        { name: 'a/sub', type: 'directory' },
        { name: 'a/sub/y', content: '2' },
        { name: 'keep', content: 'k' },
      ],
      [{ name: 'a/.wh.x' }, { name: '.wh.keep' }, { name: 'a/.wh.sub' }],
    )
    expect(paths(img)).toEqual(['', 'a'])
  })

  it('hides every lower child of an opaque directory but keeps the children of its own layer', async () => {
    const img = await image(
      [
        { name: 'd', type: 'directory' },
        { name: 'd/old', content: 'o' },
        { name: 'd/sub', type: 'directory' },
        { name: 'd/sub/deep', content: 'x' },
      ],
      [
        { name: 'd', type: 'directory', mode: 0o700 },
        { name: 'd/.wh..wh..opq' },
        { name: 'd/new', content: 'n' },
      ],
    )
    expect(paths(img)).toEqual(['', 'd', 'd/new'])
    expect(img.reader.lookup('d')!.mode).toBe(0o700)
  })

  it('lets upper layers replace files, turn a directory into a file and take a directory’s metadata while keeping its children', async () => {
    const img = await image(
      [
        { name: 'd', type: 'directory', uid: 1, mtime: 10 },
        { name: 'd/f', content: 'lower' },
        { name: 'g', type: 'directory' },
        { name: 'g/child', content: 'c' },
        { name: 'same', content: 'v1' },
      ],
      [
        {
          name: 'd',
          type: 'directory',
          uid: 2,
          mtime: 20,
          xattrs: new Map([['user.u', Buffer.from('1')]]),
        },
        { name: 'g', content: 'now a file' },
        { name: 'same', content: 'version 2' },
      ],
    )
    expect(paths(img)).toEqual(['', 'd', 'd/f', 'g', 'same'])
    expect(img.reader.lookup('d')).toMatchObject({ uid: 2, mtime: 20 })
    expect(img.reader.lookup('d')!.xattrs.get('user.u')?.toString()).toBe('1')
    expect((await img.reader.read('same', 0, 100)).toString()).toBe('version 2')
    expect((await img.reader.read('g', 0, 100)).toString()).toBe('now a file')
    expect((await img.reader.read('d/f', 0, 100)).toString()).toBe('lower')
  })

  it('creates missing parent directories the way umoci does (0755, root-owned)', async () => {
    const img = await image([{ name: 'x/y/z', content: 'deep' }])
    expect(paths(img)).toEqual(['', 'x', 'x/y', 'x/y/z'])
    expect(img.reader.lookup('x/y')).toMatchObject({
      type: 'directory',
      mode: 0o755,
      uid: 0,
      gid: 0,
    })
  })

  it('resolves hard links to one inode with the target’s content, and counts links left after an upper layer replaces one', async () => {
    const img = await image(
      [
        { name: 'f', content: 'shared', mode: 0o640 },
        { name: 'h1', type: 'hardlink', linkName: 'f' },
        { name: 'h2', type: 'hardlink', linkName: 'h1' },
      ],
      [{ name: 'h2', content: 'replaced' }],
    )
    const [f, h1, h2] = ['f', 'h1', 'h2'].map((p) => img.reader.lookup(p)!)
    expect(f!.ino).toBe(h1!.ino)
    expect(f!.nlink).toBe(2)
    expect(h1!.mode).toBe(0o640)
    expect(h2!.ino).not.toBe(f!.ino)
    expect(h2!.nlink).toBe(1)
    expect((await img.reader.read('h1', 0, 10)).toString()).toBe('shared')
  })

  it('refuses a layer that writes under a symlink or a file of a lower layer', async () => {
    await expect(
      image(
        [{ name: 'lib', type: 'symlink', linkName: 'usr/lib' }],
        [{ name: 'lib/x', content: '1' }],
      ),
    ).rejects.toMatchObject({ code: 'IMAGE_SYMLINK_ESCAPE', entry: 'lib/x' })
    await expect(
      image([{ name: 'f', content: '1' }], [{ name: 'f/x', content: '1' }]),
    ).rejects.toMatchObject({ code: 'IMAGE_PARENT_NOT_DIRECTORY' })
  })

  it('counts a directory’s links as 2 plus its subdirectories and lists children sorted', async () => {
    const img = await image([
      { name: 'd', type: 'directory' },
      { name: 'd/b', type: 'directory' },
      { name: 'd/a', type: 'directory' },
      { name: 'd/c', content: '' },
    ])
    expect(img.reader.lookup('/d')!.nlink).toBe(4)
    expect(img.reader.readdir('/d')).toEqual(['a', 'b', 'c'])
    expect(img.reader.readdir('/')).toEqual(['d'])
  })
})

describe('openImage', () => {
  it('looks paths up per component without following symlinks', async () => {
    const img = await image([
      { name: 'real', type: 'directory' },
      { name: 'real/f', content: 'x' },
      { name: 'link', type: 'symlink', linkName: 'real' },
    ])
    expect(img.reader.lookup('/link/f')).toBeUndefined()
    expect(img.reader.lookup('/real/f')?.type).toBe('file')
    expect(img.reader.readlink('/link')).toBe('real')
    expect(img.reader.lookup('real/../real/f')).toBeUndefined()
  })

  it('reads any range of a file spanning frames, and returns fewer bytes at its end', async () => {
    const content = Buffer.alloc(5 * 2 ** 20)
    for (let i = 0; i < content.length; i += 4) content.writeUInt32LE(i, i)
    const img = await image([{ name: 'big', content }])
    expect(img.index.blobs[0]!.frames.length).toBeGreaterThan(4)
    for (const [offset, length] of [
      [0, 10],
      [2 ** 20 - 3, 7],
      [123_457, 3 * 2 ** 20],
      [content.length - 5, 100],
      [content.length, 10],
    ]) {
      const got = await img.reader.read('big', offset!, length!)
      expect(got.equals(content.subarray(offset!, offset! + length!))).toBe(true)
    }
    const span = img.reader.framesFor(img.reader.lookup('big')!, 2 ** 20, 2 ** 20 + 1)!
    expect(span.last - span.first).toBeGreaterThanOrEqual(1)
  })

  it('fetches adjacent missing frames in one range and reuses decoded frames', async () => {
    const content = Buffer.alloc(4 * 2 ** 20, 7)
    const built = await image([{ name: 'big', content }])
    const calls: [number, number][] = []
    const reader = openImage(built.index, {
      read: async (blob, offset, length) => {
        calls.push([offset, length])
        return built.blobs[blob.index]!.subarray(offset, offset + length)
      },
    })
    await reader.read('big', 0, content.length)
    expect(calls).toHaveLength(1)
    await reader.read('big', 100, 1000)
    expect(calls).toHaveLength(1)
  })

  it('reads through a file range source', async () => {
    const { writeFileSync } = await import('node:fs')
    const { tmpDir } = await import('../../support/tmp.ts')
    const built = await image([{ name: 'f', content: 'hello' }])
    const dir = await tmpDir()
    writeFileSync(`${dir}/b0`, built.blobs[0]!)
    const source = fileRangeSource([`${dir}/b0`])
    expect((await openImage(built.index, source).read('/f', 1, 3)).toString()).toBe('ell')
    await source.close()
  })

  it('answers errors for missing paths and wrong types', async () => {
    const { reader } = await image([{ name: 'f', content: 'x' }])
    expect(() => reader.readdir('/nope')).toThrow(
      expect.objectContaining({ code: 'ENTRY_NOT_FOUND' }),
    )
    expect(() => reader.readdir('/f')).toThrow(
      expect.objectContaining({ code: 'ENTRY_WRONG_TYPE' }),
    )
    await expect(reader.read('/', 0, 1)).rejects.toMatchObject({ code: 'ENTRY_WRONG_TYPE' })
  })
})
