import { spawnSync } from 'node:child_process'
import { mkdir, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeLayerTar } from '../../../host/build/layer-tar.ts'
import { tmpDir } from '../../support/tmp.ts'

async function tree(root: string, mtime: number) {
  await mkdir(join(root, 'usr/bin'), { recursive: true })
  await mkdir(join(root, 'etc'))
  await writeFile(join(root, 'etc/b'), 'b')
  await writeFile(join(root, 'etc/a'), 'a')
  await writeFile(join(root, 'usr/bin/tool'), 'tool', { mode: 0o755 })
  await symlink('usr/bin', join(root, 'bin'))
  for (const p of ['etc/a', 'etc/b', 'usr/bin/tool', 'etc', 'usr/bin', 'usr']) {
    await utimes(join(root, p), mtime, mtime)
  }
}

describe('writeLayerTar', () => {
  it('writes the same bytes for the same tree, whatever the files’ mtimes or creation order', async () => {
    const [a, b, out] = [await tmpDir(), await tmpDir(), await tmpDir()]
    await tree(a, 1_000_000)
    await tree(b, 2_000_000)
    const la = await writeLayerTar(a, { tarPath: join(out, 'a.tar'), gzip: true })
    const lb = await writeLayerTar(b, { tarPath: join(out, 'b.tar'), gzip: true })
    expect(la.tar.digest).toBe(lb.tar.digest)
    expect(la.gzip?.digest).toBe(lb.gzip?.digest)
    expect(la.tar.size % 512).toBe(0)
    const listing = spawnSync('tar', ['-tvf', la.tar.path, '--numeric-owner'], {
      encoding: 'utf8',
    }).stdout
    const names = listing
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' '))
    expect(names).toEqual([
      'bin -> usr/bin',
      'etc/',
      'etc/a',
      'etc/b',
      'usr/',
      'usr/bin/',
      'usr/bin/tool',
    ])
    expect(listing).toMatch(/1970-01-01 00:00/)
    expect(listing).not.toMatch(/PaxHeaders/)
    const gunzipped = spawnSync('sh', ['-c', `gzip -dc ${la.gzip!.path} | sha256sum`], {
      encoding: 'utf8',
    }).stdout
    expect(`sha256:${gunzipped.split(' ')[0]}`).toBe(la.tar.digest)
  })

  it('keeps older mtimes and clamps newer ones when asked', async () => {
    const [root, out] = [await tmpDir(), await tmpDir()]
    await tree(root, 1_000_000)
    await utimes(join(root, 'etc/b'), 1_900_000_000, 1_900_000_000)
    const layer = await writeLayerTar(root, {
      tarPath: join(out, 'l.tar'),
      mtime: 1_500_000_000,
      clampMtime: true,
    })
    const listing = spawnSync('tar', ['--utc', '-tvf', layer.tar.path], { encoding: 'utf8' }).stdout
    expect(listing).toMatch(/1970-01-12 13:46 etc\/a/)
    expect(listing).toMatch(/2017-07-14 02:40 etc\/b/)
  })
})
