import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ManifestPutEvent } from '../../registry-edge/manifest-events.ts'
import { errorCode, expectStatus, pushBlob, pushImage, pushManifest, sha256, startTestEdge } from '../support/edge-client.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const events: ManifestPutEvent[] = []
let url: string

beforeAll(async () => {
  ;({ url } = await startTestEdge({ onManifestPut: (e) => void events.push(e) }))
})

describe('manifests', () => {
  it('stores a pushed manifest and serves the exact bytes by tag and by digest', async () => {
    const image = await pushImage(url, 'apps/hello', 'v1', [randomBytes(1000), randomBytes(2000)])
    for (const ref of ['v1', image.digest]) {
      const res = await fetch(`${url}/v2/apps/hello/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe(OCI_MANIFEST)
      expect(res.headers.get('docker-content-digest')).toBe(image.digest)
      expect(Buffer.from(await res.arrayBuffer()).equals(image.bytes)).toBe(true)
    }
    const head = await fetch(`${url}/v2/apps/hello/manifests/v1`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(image.bytes.length))
    expect(head.headers.get('docker-content-digest')).toBe(image.digest)
  })

  it('answers PUT with 201, Location and Docker-Content-Digest, and tells listeners', async () => {
    const config = Buffer.from('{}')
    const configDigest = await pushBlob(url, 'apps/events', config)
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 }, layers: [] }
    const res = await pushManifest(url, 'apps/events', 'latest', manifest)
    const digest = sha256(JSON.stringify(manifest))
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/v2/apps/events/manifests/${digest}`)
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect(res.headers.get('oci-subject')).toBeNull()
    const event = events.find((e) => e.repository === 'apps/events')
    expect(event).toMatchObject({ repository: 'apps/events', digest, mediaType: OCI_MANIFEST, tag: 'latest' })
    expect(Buffer.from(event!.bytes).toString()).toBe(JSON.stringify(manifest))
  })

  it('accepts an index whose child manifests are in the repository', async () => {
    const child = await pushImage(url, 'apps/multi', 'amd64', [randomBytes(10)])
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.bytes.length, platform: { architecture: 'amd64', os: 'linux' } }] }
    await expectStatus(await pushManifest(url, 'apps/multi', 'latest', index, OCI_INDEX), 201)
    const res = await fetch(`${url}/v2/apps/multi/manifests/latest`)
    expect(res.headers.get('content-type')).toBe(OCI_INDEX)
  })

  it('returns MANIFEST_UNKNOWN for an unknown tag or digest', async () => {
    const tag = await fetch(`${url}/v2/apps/hello/manifests/nope`)
    expect(tag.status).toBe(404)
    expect(await errorCode(tag)).toBe('MANIFEST_UNKNOWN')
    const digest = await fetch(`${url}/v2/apps/hello/manifests/${sha256('nothing')}`)
    expect(digest.status).toBe(404)
    expect(await errorCode(digest)).toBe('MANIFEST_UNKNOWN')
  })

  it('refuses a tag fetch whose Accept lists manifest types but not the stored one', async () => {
    await pushImage(url, 'apps/negotiate', 'v1', [randomBytes(10)])
    const dockerOnly = await fetch(`${url}/v2/apps/negotiate/manifests/v1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    })
    expect(dockerOnly.status).toBe(404)
    expect(await errorCode(dockerOnly)).toBe('MANIFEST_UNKNOWN')
    for (const accept of [`${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`, '*/*', 'application/json']) {
      const res = await fetch(`${url}/v2/apps/negotiate/manifests/v1`, { headers: { accept } })
      expect(res.status, accept).toBe(200)
      await res.arrayBuffer()
    }
  })

  it('answers If-None-Match with the digest with 304', async () => {
    const image = await pushImage(url, 'apps/etag', 'v1', [randomBytes(10)])
    const res = await fetch(`${url}/v2/apps/etag/manifests/v1`, { headers: { 'if-none-match': `"${image.digest}"` } })
    expect(res.status).toBe(304)
  })

  it('moves a tag to a new manifest when pushed again', async () => {
    const first = await pushImage(url, 'apps/retag', 'v1', [randomBytes(10)])
    const second = await pushImage(url, 'apps/retag', 'v1', [randomBytes(10)])
    const res = await fetch(`${url}/v2/apps/retag/manifests/v1`)
    expect(res.headers.get('docker-content-digest')).toBe(second.digest)
    expect((await fetch(`${url}/v2/apps/retag/manifests/${first.digest}`)).status).toBe(200)
  })
})

describe('DELETE', () => {
  it('deletes a tag without the manifest it points to', async () => {
    const image = await pushImage(url, 'apps/del-tag', 'v1', [randomBytes(10)])
    const res = await fetch(`${url}/v2/apps/del-tag/manifests/v1`, { method: 'DELETE' })
    expect(res.status).toBe(202)
    expect((await fetch(`${url}/v2/apps/del-tag/manifests/v1`)).status).toBe(404)
    expect((await fetch(`${url}/v2/apps/del-tag/manifests/${image.digest}`)).status).toBe(200)
  })

  it('deletes a manifest by digest together with every tag on it', async () => {
    const image = await pushImage(url, 'apps/del-manifest', 'v1', [randomBytes(10)])
    await expectStatus(await pushManifest(url, 'apps/del-manifest', 'also', image.manifest), 201)
    const res = await fetch(`${url}/v2/apps/del-manifest/manifests/${image.digest}`, { method: 'DELETE' })
    expect(res.status).toBe(202)
    for (const ref of ['v1', 'also', image.digest]) {
      expect((await fetch(`${url}/v2/apps/del-manifest/manifests/${ref}`)).status).toBe(404)
    }
    const tags = (await (await fetch(`${url}/v2/apps/del-manifest/tags/list`)).json()) as { tags: string[] }
    expect(tags.tags).toEqual([])
    const again = await fetch(`${url}/v2/apps/del-manifest/manifests/${image.digest}`, { method: 'DELETE' })
    expect(again.status).toBe(404)
    expect(await errorCode(again)).toBe('MANIFEST_UNKNOWN')
  })

  it('deletes a blob from one repository only', async () => {
    const data = randomBytes(100)
    const digest = await pushBlob(url, 'apps/del-blob', data)
    await pushBlob(url, 'apps/keep-blob', data)
    expect((await fetch(`${url}/v2/apps/del-blob/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202)
    const gone = await fetch(`${url}/v2/apps/del-blob/blobs/${digest}`)
    expect(gone.status).toBe(404)
    expect(await errorCode(gone)).toBe('BLOB_UNKNOWN')
    expect((await fetch(`${url}/v2/apps/keep-blob/blobs/${digest}`)).status).toBe(200)
  })

  it('answers 405 UNSUPPORTED when deletion is disabled', async () => {
    const { url: noDelete } = await startTestEdge({ deletion: false })
    const image = await pushImage(noDelete, 'apps/kept', 'v1', [randomBytes(10)])
    for (const path of [`manifests/v1`, `manifests/${image.digest}`, `blobs/${image.configDigest}`]) {
      const res = await fetch(`${noDelete}/v2/apps/kept/${path}`, { method: 'DELETE' })
      expect(res.status, path).toBe(405)
      expect(await errorCode(res)).toBe('UNSUPPORTED')
    }
    expect((await fetch(`${noDelete}/v2/apps/kept/manifests/v1`)).status).toBe(200)
  })
})
