import { describe, expect, it } from 'vitest'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import { isOciError } from '../../../runtime/oci/errors.ts'
import { MediaType } from '../../../runtime/oci/media-types.ts'
import {
  MAX_MANIFEST_BYTES,
  parseImageConfig,
  parseManifest,
} from '../../../runtime/oci/schemas.ts'

const D1 = sha256Of('config')
const D2 = sha256Of('layer')
const desc = (mediaType: string, digest = D2, size = 5) => ({ mediaType, digest, size })

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: desc(MediaType.ociConfig, D1, 6),
  layers: [desc(MediaType.ociLayerGzip)],
}
const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifest,
  config: desc(MediaType.dockerConfig, D1, 6),
  layers: [desc(MediaType.dockerLayerGzip)],
}
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [{ ...desc(MediaType.ociManifest), platform: { architecture: 'amd64', os: 'linux' } }],
}
const bytes = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))

describe('parseManifest', () => {
  it.each([
    ['an OCI image manifest', ociManifest, undefined, 'image', MediaType.ociManifest],
    ['a Docker v2 schema 2 manifest', dockerManifest, undefined, 'image', MediaType.dockerManifest],
    ['an OCI index', ociIndex, undefined, 'index', MediaType.ociIndex],
    [
      'a Docker manifest list',
      { ...ociIndex, mediaType: MediaType.dockerManifestList },
      undefined,
      'index',
      MediaType.dockerManifestList,
    ],
    [
      'a manifest without mediaType, typed by Content-Type',
      { ...ociManifest, mediaType: undefined },
      `${MediaType.ociManifest}; charset=utf-8`,
      'image',
      MediaType.ociManifest,
    ],
    [
      'an index without mediaType or Content-Type (as skopeo writes index.json)',
      { ...ociIndex, mediaType: undefined },
      'application/octet-stream',
      'index',
      MediaType.ociIndex,
    ],
    [
      'an artifact manifest with a subject, artifactType and unknown fields',
      {
        ...ociManifest,
        artifactType: 'application/x.test',
        subject: desc(MediaType.ociManifest),
        extra: 1,
      },
      undefined,
      'image',
      MediaType.ociManifest,
    ],
  ] as const)('parses %s', (_name, doc, contentType, kind, mediaType) => {
    const parsed = parseManifest(bytes(doc), contentType)
    expect(parsed.kind).toBe(kind)
    expect(parsed.mediaType).toBe(mediaType)
  })

  it('keeps unknown fields', () => {
    const parsed = parseManifest(bytes({ ...ociManifest, 'x-custom': { a: 1 } }))
    expect((parsed.manifest as Record<string, unknown>)['x-custom']).toEqual({ a: 1 })
  })

  it.each([
    // not JSON at all
    ['not JSON', '{"schemaVersion":'],
    // JSON, but not an object
    ['a JSON array', []],
    ['JSON null', 'null'],
    // schema 1 manifests are not supported (and have no mediaType or layers)
    ['a schema 1 manifest', { schemaVersion: 1, name: 'a', tag: 't', fsLayers: [] }],
    // wrong schemaVersion
    ['schemaVersion 3', { ...ociManifest, schemaVersion: 3 }],
    // an unknown media type
    ['an unknown mediaType', { ...ociManifest, mediaType: 'application/json' }],
    // config is required in an image manifest
    ['a manifest without config', { ...ociManifest, config: undefined }],
    // layers must be an array
    ['layers as an object', { ...ociManifest, layers: {} }],
    // digest must be sha256:<64 lowercase hex>
    [
      'a layer with a short digest',
      { ...ociManifest, layers: [desc(MediaType.ociLayerGzip, 'sha256:abc' as never)] },
    ],
    [
      'a layer with an uppercase digest',
      { ...ociManifest, layers: [desc(MediaType.ociLayerGzip, D2.toUpperCase() as never)] },
    ],
    // sizes must be non-negative safe integers
    ['a negative size', { ...ociManifest, layers: [desc(MediaType.ociLayerGzip, D2, -1)] }],
    ['a fractional size', { ...ociManifest, layers: [desc(MediaType.ociLayerGzip, D2, 1.5)] }],
    ['a size above 2^53', { ...ociManifest, layers: [desc(MediaType.ociLayerGzip, D2, 2 ** 60)] }],
    [
      'a size as a string',
      { ...ociManifest, layers: [{ ...desc(MediaType.ociLayerGzip), size: '5' }] },
    ],
    // an empty media type in a descriptor
    ['an empty layer mediaType', { ...ociManifest, layers: [desc('')] }],
    // annotations must map strings to strings
    ['a numeric annotation', { ...ociManifest, annotations: { a: 1 } }],
    // an index whose manifests are not descriptors
    [
      'an index entry without digest',
      { ...ociIndex, manifests: [{ mediaType: MediaType.ociManifest, size: 1 }] },
    ],
    // the document says one type, the document's shape is another
    ['an index declared as an image manifest', { ...ociIndex, mediaType: MediaType.ociManifest }],
  ])('rejects %s with MANIFEST_INVALID', (_name, doc) => {
    let caught: unknown
    try {
      parseManifest(bytes(doc))
    } catch (err) {
      caught = err
    }
    expect(isOciError(caught, 'MANIFEST_INVALID'), String(caught)).toBe(true)
  })

  it('rejects a mediaType that contradicts the Content-Type', () => {
    expect(() => parseManifest(bytes(ociManifest), MediaType.dockerManifest)).toThrow(
      /does not match Content-Type/,
    )
  })

  it('rejects manifests larger than 4 MiB with status 413', () => {
    const huge = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20)
    expect(() => parseManifest(huge)).toThrow(
      expect.objectContaining({ code: 'MANIFEST_INVALID', status: 413 }),
    )
  })
})

describe('parseImageConfig', () => {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Entrypoint: null, Cmd: ['sh'], Labels: null },
    rootfs: { type: 'layers', diff_ids: [D2] },
    history: [{ created_by: 'x' }],
  }

  it('parses a config with Docker-style nulls', () => {
    const parsed = parseImageConfig(bytes(config))
    expect(parsed.rootfs.diff_ids).toEqual([D2])
    expect(parsed.config?.Cmd).toEqual(['sh'])
  })

  it.each([
    // rootfs.type must be "layers"
    ['rootfs.type other than layers', { ...config, rootfs: { type: 'overlay', diff_ids: [] } }],
    // diff_ids must be digests
    ['a bad diff_id', { ...config, rootfs: { type: 'layers', diff_ids: ['x'] } }],
    // os and architecture are required
    ['no os', { ...config, os: undefined }],
    // Env must be a list of strings
    ['Env as a map', { ...config, config: { Env: { PATH: '/bin' } } }],
  ])('rejects %s', (_name, doc) => {
    expect(() => parseImageConfig(bytes(doc))).toThrow(
      expect.objectContaining({ code: 'MANIFEST_INVALID' }),
    )
  })
})
