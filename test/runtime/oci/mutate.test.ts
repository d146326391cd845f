import { describe, expect, it } from 'vitest'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { createImage, emptyImage } from '../../../runtime/oci/image.ts'
import { MediaType } from '../../../runtime/oci/media-types.ts'
import { appendLayer } from '../../../runtime/oci/mutate.ts'
import { parseImageConfig, parseManifest } from '../../../runtime/oci/schemas.ts'
import { blobsOf, bytesOf, layerOf } from './images.ts'

const created = new Date('2026-01-02T03:04:05Z')

describe('appendLayer', () => {
  it('adds the layer, its DiffID and a history entry, and applies config changes', async () => {
    const layer1 = await layerOf({ 'etc/base': 'base' })
    const base = appendLayer(emptyImage(), layer1, {
      env: { PATH: '/bin', A: '1' },
      cmd: ['sh'],
      created,
    })
    const layer2 = await layerOf({ 'app/main.js': 'console.log(1)' })
    const image = appendLayer(base, layer2, {
      env: { A: '2', B: '3' },
      entrypoint: ['node'],
      cmd: ['/app/main.js'],
      workingDir: '/app',
      user: '1000:1000',
      labels: { 'org.example': 'x' },
      created,
      createdBy: 'thaw deploy',
    })
    expect(image.manifest.layers).toEqual([layer1.descriptor, layer2.descriptor])
    expect(image.config.rootfs.diff_ids).toEqual([layer1.diffId, layer2.diffId])
    expect(image.config.config).toEqual({
      Env: ['PATH=/bin', 'A=2', 'B=3'],
      Entrypoint: ['node'],
      Cmd: ['/app/main.js'],
      WorkingDir: '/app',
      User: '1000:1000',
      Labels: { 'org.example': 'x' },
    })
    expect(image.config.history?.at(-1)).toEqual({
      created: created.toISOString(),
      created_by: 'thaw deploy',
      comment: layer2.descriptor.digest,
    })
    // The manifest names the config bytes, and the image is what its bytes say.
    expect(image.manifest.config.digest).toBe(sha256Of(image.configBytes))
    expect(image.digest).toBe(sha256Of(image.manifestBytes))
    expect(parseManifest(image.manifestBytes).kind).toBe('image')
    expect(parseImageConfig(image.configBytes)).toEqual(image.config)
  })

  it('does not change the base image', async () => {
    const base = appendLayer(emptyImage(), await layerOf({ a: 'a' }), { env: { X: '1' }, created })
    const before = Buffer.from(base.manifestBytes)
    appendLayer(base, await layerOf({ b: 'b' }), { env: { X: '2' }, created })
    expect(base.manifestBytes).toEqual(before)
    expect(base.config.config?.Env).toEqual(['X=1'])
  })

  it('is deterministic for the same inputs', async () => {
    const layer = await layerOf({ a: 'a' })
    expect(appendLayer(emptyImage(), layer, { created }).digest).toBe(
      appendLayer(emptyImage(), layer, { created }).digest,
    )
  })

  it('opens the new layer and the base layers, verified', async () => {
    const l1 = await layerOf({ a: 'a' })
    const l2 = await layerOf({ b: 'b' })
    const image = appendLayer(appendLayer(emptyImage(), l1, { created }), l2, { created })
    const blobs = await blobsOf(image)
    expect(blobs.get(l1.descriptor.digest)).toEqual(await bytesOf(l1.open()))
    expect(blobs.get(l2.descriptor.digest)).toEqual(await bytesOf(l2.open()))
    expect(blobs.get(image.manifest.config.digest)).toEqual(image.configBytes)
  })

  it('keeps a Docker base Docker, with the Docker gzip layer type', async () => {
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    )
    const docker = createImage({
      manifestBytes: Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: {
            mediaType: MediaType.dockerConfig,
            digest: sha256Of(config),
            size: config.length,
          },
          layers: [],
        }),
      ),
      configBytes: config,
      openBlob: async () => {
        throw new Error('no blobs')
      },
    })
    const image = appendLayer(docker, await layerOf({ a: 'a' }), { created })
    expect(image.mediaType).toBe(MediaType.dockerManifest)
    expect(image.manifest.config.mediaType).toBe(MediaType.dockerConfig)
    expect(image.manifest.layers[0]!.mediaType).toBe(MediaType.dockerLayerGzip)
  })

  it.each([
    // an empty name
    [{ '': 'x' }],
    // a name with '='
    [{ 'A=B': 'x' }],
  ])('rejects environment variable names like %j', async (env) => {
    const layer = await layerOf({ a: 'a' })
    expect(() => appendLayer(emptyImage(), layer, { env })).toThrow(/environment variable/)
  })
})

describe('createImage', () => {
  it('rejects config bytes that are not the ones the manifest names', () => {
    const image = emptyImage()
    expect(() =>
      createImage({
        manifestBytes: image.manifestBytes,
        configBytes: Buffer.from('{}'),
        openBlob: image.openBlob,
      }),
    ).toThrow(expect.objectContaining({ code: 'DIGEST_INVALID' }))
  })

  it('rejects an index or an artifact where an image is expected', () => {
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
    )
    expect(() =>
      createImage({
        manifestBytes: index,
        configBytes: Buffer.from('{}'),
        openBlob: emptyImage().openBlob,
      }),
    ).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }))
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: 'application/x.test',
        config: { mediaType: MediaType.ociEmpty, digest: sha256Of('{}'), size: 2 },
        layers: [],
      }),
    )
    expect(() =>
      createImage({
        manifestBytes: artifact,
        configBytes: Buffer.from('{}'),
        openBlob: emptyImage().openBlob,
      }),
    ).toThrow(/not a container image/)
  })
})
