import { describe, expect, it } from 'vitest'
import { appLayer, appLayerTar } from '../../../host/deploy/app-layer.ts'
import type { AppFile } from '../../../host/deploy/app-files.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { tarEntries } from '../../support/tar-entries.ts'

const file = (path: string, text: string, executable = false): AppFile => ({
  path,
  data: Buffer.from(text),
  executable,
})

const FILES = [
  file('src/b.js', 'b'),
  file('host.json', '{}'),
  file('a-b/x', 'x'),
  file('a/z.js', 'z'),
  file('bin/run', '#!/bin/sh\n', true),
]

describe('appLayerTar', () => {
  it('puts every file under the root with all parent folders, folders before their contents, in byte order', () => {
    const names = tarEntries(appLayerTar(FILES, { root: '/home/site/wwwroot' })).map(
      (e) => e.header.name,
    )
    expect(names).toEqual([
      'home/',
      'home/site/',
      'home/site/wwwroot/',
      'home/site/wwwroot/a/',
      'home/site/wwwroot/a/z.js',
      'home/site/wwwroot/a-b/',
      'home/site/wwwroot/a-b/x',
      'home/site/wwwroot/bin/',
      'home/site/wwwroot/bin/run',
      'home/site/wwwroot/host.json',
      'home/site/wwwroot/src/',
      'home/site/wwwroot/src/b.js',
    ])
  })

  it('writes owner 0:0, one fixed mtime, 0755 for folders and executables, 0644 for the rest, and the contents', () => {
    const entries = tarEntries(appLayerTar(FILES, { root: '/app', mtime: 1_700_000_000 }))
    for (const { header } of entries) {
      expect([header.uid, header.gid, header.uname, header.gname]).toEqual([0, 0, '', ''])
      expect(header.mtime).toBe(1_700_000_000)
    }
    const byName = new Map(entries.map((e) => [e.header.name, e]))
    expect(byName.get('app/')!.header.mode).toBe(0o755)
    expect(byName.get('app/bin/run')!.header.mode).toBe(0o755)
    expect(byName.get('app/host.json')!.header.mode).toBe(0o644)
    expect(byName.get('app/src/b.js')!.data.toString()).toBe('b')
    expect(byName.get('app/bin/run')!.data.toString()).toBe('#!/bin/sh\n')
  })

  it('gives the same bytes whatever order the files come in', () => {
    const a = appLayerTar(FILES, { root: '/app' })
    const b = appLayerTar([...FILES].reverse(), { root: '/app' })
    expect(sha256Of(b)).toBe(sha256Of(a))
  })

  it('gives other bytes when a file changes, and lets a later file replace an earlier one with the same path', () => {
    const a = appLayerTar(FILES, { root: '/app' })
    const changed = appLayerTar([...FILES, file('host.json', '{"version":"2.0"}')], {
      root: '/app',
    })
    expect(sha256Of(changed)).not.toBe(sha256Of(a))
    const hosts = tarEntries(changed).filter((e) => e.header.name === 'app/host.json')
    expect(hosts.map((e) => e.data.toString())).toEqual(['{"version":"2.0"}'])
  })
})

describe('appLayer', () => {
  it('is a gzip layer whose DiffID is the digest of the uncompressed tar and whose blob opens to its bytes', async () => {
    const layer = await appLayer(FILES, { root: '/app' })
    expect(layer.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip')
    expect(layer.diffId).toBe(sha256Of(appLayerTar(FILES, { root: '/app' })))
    const chunks: Buffer[] = []
    for await (const c of await layer.open()) chunks.push(c as Buffer)
    const blob = Buffer.concat(chunks)
    expect(sha256Of(blob)).toBe(layer.descriptor.digest)
    expect(blob.length).toBe(layer.descriptor.size)
    expect((await appLayer(FILES, { root: '/app' })).descriptor.digest).toBe(
      layer.descriptor.digest,
    )
  })
})
