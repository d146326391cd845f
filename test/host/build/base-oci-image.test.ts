import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { baseOciImage } from '../../../host/build/base-oci-image.ts'
import type { BaseImage } from '../../../host/build/base-image.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { tmpDir } from '../../support/tmp.ts'

async function fakeBase(): Promise<BaseImage> {
  const dir = await tmpDir('thaw-base-oci-')
  const tar = Buffer.alloc(1024)
  const gz = gzipSync(tar)
  await writeFile(join(dir, 'layer.tar.gz'), gz)
  return {
    kind: 'node',
    rootfs: join(dir, 'rootfs'),
    layer: {
      tar: { path: join(dir, 'layer.tar'), digest: sha256Of(tar), size: tar.length },
      gzip: { path: join(dir, 'layer.tar.gz'), digest: sha256Of(gz), size: gz.length },
    },
    platform: { architecture: 'amd64', os: 'linux' },
    config: { Env: ['PATH=/usr/bin:/bin', 'A=b=c'], Cmd: ['node'], WorkingDir: '/' },
    description: 'node v20 from /usr/bin/node',
    key: 'k',
  }
}

describe('baseOciImage', () => {
  it('is a one-layer OCI image of the gzip layer with the base’s config, platform and label, the same digest every time', async () => {
    const base = await fakeBase()
    const image = baseOciImage(base)
    expect(image.manifest.layers).toEqual([
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: base.layer.gzip!.digest,
        size: base.layer.gzip!.size,
      },
    ])
    expect(image.config.rootfs.diff_ids).toEqual([base.layer.tar.digest])
    expect(image.config).toMatchObject({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00.000Z',
    })
    expect(image.config.config).toMatchObject({
      Env: ['PATH=/usr/bin:/bin', 'A=b=c'],
      Cmd: ['node'],
      WorkingDir: '/',
      Labels: { 'dev.thaw.base': 'node v20 from /usr/bin/node' },
    })
    expect(baseOciImage(base).digest).toBe(image.digest)
    const chunks: Buffer[] = []
    for await (const c of await image.openBlob(image.manifest.layers[0]!)) chunks.push(c as Buffer)
    expect(sha256Of(Buffer.concat(chunks))).toBe(base.layer.gzip!.digest)
  })

  it('refuses a base built without gzip', async () => {
    const base = await fakeBase()
    delete base.layer.gzip
    expect(() => baseOciImage(base)).toThrow(expect.objectContaining({ code: 'BASE_NOT_GZIPPED' }))
  })
})
