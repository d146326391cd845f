import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { digestHex, sha256Of } from '../../../runtime/oci/digest.ts'
import { emptyImage } from '../../../runtime/oci/image.ts'
import { REF_NAME, createLayout, openLayout } from '../../../runtime/oci/layout.ts'
import { MediaType } from '../../../runtime/oci/media-types.ts'
import { appendLayer } from '../../../runtime/oci/mutate.ts'
import { tmpDir } from '../../support/tmp.ts'
import { blobsOf, bytesOf, layerOf } from './images.ts'

const created = new Date('2026-01-02T03:04:05Z')

async function sampleImage(content = 'hello') {
  return appendLayer(emptyImage(), await layerOf({ 'hello.txt': content }), {
    cmd: ['/hello'],
    created,
  })
}

describe('OCI image layout', () => {
  it('writes the files image-layout.md specifies', async () => {
    const dir = await tmpDir()
    const image = await sampleImage()
    await (await createLayout(dir)).writeImage(image, { tag: 'v1' })
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    })
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'))
    expect(index).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        {
          mediaType: MediaType.ociManifest,
          digest: image.digest,
          size: image.manifestBytes.length,
          annotations: { [REF_NAME]: 'v1' },
        },
      ],
    })
    const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).sort()
    const want = [
      image.digest,
      image.manifest.config.digest,
      ...image.manifest.layers.map((l) => l.digest),
    ]
      .map(digestHex)
      .sort()
    expect(blobs).toEqual(want)
    expect(await readFile(join(dir, 'blobs', 'sha256', digestHex(image.digest)))).toEqual(
      image.manifestBytes,
    )
  })

  it('reads back the same image, byte for byte', async () => {
    const dir = await tmpDir()
    const image = await sampleImage()
    await (await createLayout(dir)).writeImage(image, { tag: 'v1' })
    const read = await (await openLayout(dir)).image('v1')
    expect(read.manifestBytes).toEqual(image.manifestBytes)
    expect(read.configBytes).toEqual(image.configBytes)
    expect(await blobsOf(read)).toEqual(await blobsOf(image))
    expect((await (await openLayout(dir)).image(image.digest)).digest).toBe(image.digest)
  })

  it('moves a tag to the new image and keeps other tags', async () => {
    const dir = await tmpDir()
    const layout = await createLayout(dir)
    const one = await sampleImage('one')
    const two = await sampleImage('two')
    await layout.writeImage(one, { tag: 'v1' })
    await layout.writeImage(one, { tag: 'stable' })
    await layout.writeImage(two, { tag: 'v1' })
    expect((await layout.resolve('v1')).digest).toBe(two.digest)
    expect((await layout.resolve('stable')).digest).toBe(one.digest)
    expect((await layout.index()).manifests).toHaveLength(2)
  })

  it('resolves an index entry to the platform asked for', async () => {
    const dir = await tmpDir()
    const layout = await createLayout(dir)
    const amd = appendLayer(
      emptyImage({ os: 'linux', architecture: 'amd64' }),
      await layerOf({ a: 'amd' }),
      { created },
    )
    const arm = appendLayer(
      emptyImage({ os: 'linux', architecture: 'arm64' }),
      await layerOf({ a: 'arm' }),
      { created },
    )
    await layout.writeImage(amd)
    await layout.writeImage(arm)
    const platformed = (i: typeof amd, architecture: string) => ({
      mediaType: i.mediaType,
      digest: i.digest,
      size: i.manifestBytes.length,
      platform: { os: 'linux', architecture },
    })
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [platformed(amd, 'amd64'), platformed(arm, 'arm64')],
      }),
    )
    const written = await layout.writeBlob(index)
    await layout.addManifest({ mediaType: MediaType.ociIndex, ...written }, { tag: 'multi' })
    expect(
      (await layout.image('multi', { platform: { os: 'linux', architecture: 'arm64' } })).digest,
    ).toBe(arm.digest)
    await expect(
      layout.image('multi', { platform: { os: 'linux', architecture: 'riscv64' } }),
    ).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    })
  })

  it('detects a corrupted blob when it is read', async () => {
    const dir = await tmpDir()
    const image = await sampleImage()
    await (await createLayout(dir)).writeImage(image, { tag: 'v1' })
    const layer = image.manifest.layers[0]!
    const path = join(dir, 'blobs', 'sha256', digestHex(layer.digest))
    const bytes = await readFile(path)
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1)
    await writeFile(path, bytes)
    const read = await (await openLayout(dir)).image('v1')
    await expect(bytesOf(read.openBlob(layer))).rejects.toMatchObject({ code: 'DIGEST_INVALID' })
  })

  it('refuses to store a stream that does not match its digest, leaving nothing behind', async () => {
    const dir = await tmpDir()
    const layout = await createLayout(dir)
    await expect(
      layout.writeBlob(Readable.from([Buffer.from('abc')]), { digest: sha256Of('abd'), size: 3 }),
    ).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    })
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([])
  })

  it.each([
    // no oci-layout file
    ['missing', undefined, 'NAME_UNKNOWN'],
    // another layout version
    ['2.0.0', '{"imageLayoutVersion":"2.0.0"}', 'UNSUPPORTED'],
    // not JSON
    ['garbage', 'not json', 'NAME_UNKNOWN'],
  ])('refuses a directory whose oci-layout is %s', async (_name, content, code) => {
    const dir = await tmpDir()
    if (content !== undefined) await writeFile(join(dir, 'oci-layout'), content)
    await expect(openLayout(dir)).rejects.toMatchObject({ code })
  })

  it('fails with MANIFEST_UNKNOWN for a tag it does not have', async () => {
    const layout = await createLayout(await tmpDir())
    await expect(layout.image('nope')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' })
  })
})
