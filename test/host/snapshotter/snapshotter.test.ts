import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { silentHostLogger } from '../../../host/log/host-logger.ts'
import type { ImageMounts } from '../../../host/mount/image-mounts.ts'
import { Snapshotter } from '../../../host/snapshotter/snapshotter.ts'
import { tmpDir } from '../../support/tmp.ts'

// The overlay side of the snapshotter on its own (no containerd, no mounts made: it only answers
// what to mount). No Prepare here carries remote labels, so the image mounts are never asked.
const noImages: ImageMounts = {
  acquire: () => Promise.reject(new Error('not asked in these tests')),
  clearCache: async () => {},
  close: async () => {},
}
const open = (root: string) =>
  Snapshotter.open({ root, mounts: noImages, logger: silentHostLogger })
const code = (c: string) => expect.objectContaining({ code: c })

describe('Snapshotter (overlay snapshots)', () => {
  it("answers containerd's overlay mounts: bind for a first layer, overlay with the parents nearest first", async () => {
    const root = await tmpDir('thaw-sn-')
    const sn = await open(root)
    const [base] = await sn.prepare('extract-1', '', {})
    expect(base).toEqual({
      type: 'bind',
      source: join(root, 'snapshots/1/fs'),
      options: ['rw', 'rbind'],
    })
    await sn.commit('layer-1', 'extract-1', { a: '1' })
    await sn.prepare('extract-2', 'layer-1', {})
    await sn.commit('layer-2', 'extract-2', {})
    const [container] = await sn.prepare('container', 'layer-2', {})
    expect(container).toEqual({
      type: 'overlay',
      source: 'overlay',
      options: [
        `workdir=${join(root, 'snapshots/3/work')}`,
        `upperdir=${join(root, 'snapshots/3/fs')}`,
        `lowerdir=${join(root, 'snapshots/2/fs')}:${join(root, 'snapshots/1/fs')}`,
      ],
    })
    expect(await sn.view('v1', 'layer-1', {})).toEqual([
      { type: 'bind', source: join(root, 'snapshots/1/fs'), options: ['ro', 'rbind'] },
    ])
    expect(await sn.mounts('container')).toEqual([container])
    expect((await sn.stat('layer-1')).labels).toEqual({ a: '1' })
    expect((await sn.list(['parent==layer-1'])).map((i) => i.name).sort()).toEqual([
      'layer-2',
      'v1',
    ])
  })

  it('refuses what containerd must not get, with its errdefs class, and changes nothing', async () => {
    const root = await tmpDir('thaw-sn-')
    const sn = await open(root)
    await sn.prepare('a', '', {})
    await sn.commit('c', 'a', {})
    await sn.prepare('b', 'c', {})
    const before = await readFile(join(root, 'metadata.json'), 'utf8')
    await expect(sn.prepare('b', 'c', {})).rejects.toEqual(code('ALREADY_EXISTS'))
    await expect(sn.prepare('x', 'missing', {})).rejects.toEqual(code('NOT_FOUND'))
    await expect(sn.prepare('x', 'b', {})).rejects.toEqual(code('FAILED_PRECONDITION')) // parent not committed
    await expect(sn.commit('c', 'b', {})).rejects.toEqual(code('ALREADY_EXISTS'))
    await expect(sn.commit('d', 'c', {})).rejects.toEqual(code('FAILED_PRECONDITION')) // not active
    await expect(sn.mounts('c')).rejects.toEqual(code('FAILED_PRECONDITION')) // committed
    await expect(sn.remove('c')).rejects.toEqual(code('FAILED_PRECONDITION')) // has a child
    await expect(sn.update('c', {}, ['parent'])).rejects.toEqual(code('INVALID_ARGUMENT'))
    expect(await readFile(join(root, 'metadata.json'), 'utf8')).toBe(before)
    expect(await readdir(join(root, 'snapshots'))).toEqual(['1', '2'])
  })

  it('updates labels by field path, keeps its state across a reopen, and cleans up orphaned folders', async () => {
    const root = await tmpDir('thaw-sn-')
    const sn = await open(root)
    await sn.prepare('a', '', { keep: 'k', drop: 'd' })
    const info = await sn.update('a', { drop: '', add: 'x' }, ['labels.add'])
    expect(info.labels).toEqual({ keep: 'k', drop: 'd', add: 'x' })
    expect((await sn.update('a', { only: 'o' }, [])).labels).toEqual({ only: 'o' })
    await mkdir(join(root, 'snapshots/99/fs'), { recursive: true }) // left by a crash
    const again = await open(root)
    expect((await again.stat('a')).labels).toEqual({ only: 'o' })
    await again.cleanup()
    expect(await readdir(join(root, 'snapshots'))).toEqual(['1'])
    await again.remove('a')
    await expect(again.stat('a')).rejects.toEqual(code('NOT_FOUND'))
    expect(await readdir(join(root, 'snapshots'))).toEqual([])
  })

  it('does not start over a metadata file it cannot read, and leaves the file as it was', async () => {
    const root = await tmpDir('thaw-sn-')
    await writeFile(join(root, 'metadata.json'), '{"version":1,"snapshots":"no"}')
    await expect(open(root)).rejects.toThrow(/is not a thaw snapshotter metadata file/)
    expect(await readFile(join(root, 'metadata.json'), 'utf8')).toBe(
      '{"version":1,"snapshots":"no"}',
    )
  })
})
