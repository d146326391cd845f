import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Of } from '../../runtime/oci/digest.ts'
import { emptyImage } from '../../runtime/oci/image.ts'
import { createLayout, openLayout } from '../../runtime/oci/layout.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import { appendLayer } from '../../runtime/oci/mutate.ts'
import { pullImage, pushImage } from '../../runtime/oci/remote/image-transfer.ts'
import { referrersTag } from '../../runtime/oci/remote/referrers.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../runtime/oci/remote/registry-client.ts'
import { run } from '../support/processes.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { tmpDir } from '../support/tmp.ts'
import { blobsOf, bytesOf, layerOf } from '../runtime/oci/images.ts'

// The registry client, image layout and appendLayer against a real CNCF distribution (Debian's
// docker-registry 2.8, no auth), and interop with skopeo and umoci.

let registry: TestRegistry
let client: RegistryClient
const created = new Date('2026-01-02T03:04:05Z')

beforeAll(async () => {
  registry = await startDistribution()
  client = createRegistryClient({ registry: registry.url, retry: { baseDelayMs: 10 } })
})

afterAll(async () => {
  await client?.close()
  await registry?.stop()
})

const skopeo = (...args: string[]) => run('skopeo', ['--insecure-policy', ...args])
const pseudoRandom = (size: number, seed: number) => {
  const out = Buffer.alloc(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

describe('registry client against distribution 2.8', () => {
  it('pushes a small blob in one PUT and reads it back verified', async () => {
    const blob = pseudoRandom(10_000, 1)
    const pushed = await client.pushBlob('e2e/blobs', blob, {
      digest: sha256Of(blob),
      size: blob.length,
    })
    expect(pushed.uploaded).toBe(true)
    expect(await client.headBlob('e2e/blobs', pushed.digest)).toBe(blob.length)
    expect(await client.readBlob('e2e/blobs', pushed.digest)).toEqual(blob)
    await new Promise((r) => setTimeout(r, 50)) // the access log is written after the response
    expect(registry.requests().filter((l) => l.startsWith('PATCH /v2/e2e/blobs/'))).toEqual([])
  })

  it('pushes a large blob from a stream in chunks, with progress, and reads ranges of it', async () => {
    const blob = pseudoRandom(700_000, 2)
    const progress: number[] = []
    const pushed = await client.pushBlob(
      'e2e/chunked',
      () => Readable.from([blob.subarray(0, 1000), blob.subarray(1000)]),
      { digest: sha256Of(blob), size: blob.length },
      { monolithicMaxBytes: 100_000, chunkSize: 256 * 1024, onProgress: (n) => progress.push(n) },
    )
    expect(pushed.uploaded).toBe(true)
    expect(progress).toEqual([262144, 524288, 700000])
    await new Promise((r) => setTimeout(r, 50))
    expect(registry.requests().filter((l) => l.startsWith('PATCH /v2/e2e/chunked/'))).toHaveLength(
      3,
    )
    // Compared by digest: vitest's toEqual walks large Buffers element by element.
    const read = await client.readBlob('e2e/chunked', pushed.digest, { size: blob.length })
    expect(sha256Of(read)).toBe(pushed.digest)
    const range = await client.fetchRange('e2e/chunked', pushed.digest, 123_456, 123_456 + 9999)
    expect(sha256Of(range)).toBe(sha256Of(blob.subarray(123_456, 133_456)))
    // A range past the end is shortened by the registry to the blob's end.
    expect(await client.fetchRange('e2e/chunked', pushed.digest, 699_990, 800_000)).toEqual(
      blob.subarray(699_990),
    )
    await expect(
      client.fetchRange('e2e/chunked', pushed.digest, 800_000, 800_010),
    ).rejects.toMatchObject({
      code: 'RANGE_INVALID',
      status: 416,
    })
    // Pushing it again sends nothing.
    expect(
      (await client.pushBlob('e2e/chunked', blob, { digest: pushed.digest, size: blob.length }))
        .uploaded,
    ).toBe(false)
  })

  it('pushes an image and pulls it back by tag and by digest; lists tags; deletes', async () => {
    const image = appendLayer(emptyImage(), await layerOf({ 'etc/hello': 'hi' }), {
      cmd: ['/bin/true'],
      created,
    })
    const tags = ['a', 'b', 'c', 'd', 'e']
    for (const tag of tags) await pushImage(client, 'e2e/image', tag, image)
    const byTag = await client.getManifest('e2e/image', 'c')
    expect(byTag).toEqual({
      bytes: image.manifestBytes,
      mediaType: MediaType.ociManifest,
      digest: image.digest,
    })
    expect(await client.getManifest('e2e/image', image.digest)).toEqual(byTag)
    expect(await client.headManifest('e2e/image', 'a')).toEqual({
      digest: image.digest,
      mediaType: MediaType.ociManifest,
      size: image.manifestBytes.length,
    })
    // distribution 2.8 ignores `n` on tags/list (one page); Link pagination is tested against a
    // fake server in test/runtime/oci/remote/protocol.test.ts.
    expect((await client.listTags('e2e/image', { n: 2 })).sort()).toEqual(tags)
    expect(await client.catalog()).toContain('e2e/image')
    const pulled = await pullImage(client, 'e2e/image', 'a')
    expect(await blobsOf(pulled)).toEqual(await blobsOf(image))

    await client.deleteManifest('e2e/image', image.digest)
    await expect(client.getManifest('e2e/image', 'a')).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      status: 404,
    })
    expect(await client.headManifest('e2e/image', image.digest)).toBeUndefined()
  })

  it('mounts a blob from another repository, and falls back when the source lacks it', async () => {
    const blob = pseudoRandom(5000, 3)
    const digest = sha256Of(blob)
    await client.pushBlob('e2e/mount-from', blob, { digest, size: blob.length })
    expect(await client.mountBlob('e2e/mount-to', 'e2e/mount-from', digest)).toBe(true)
    expect(await client.readBlob('e2e/mount-to', digest)).toEqual(blob)
    expect(await client.mountBlob('e2e/mount-to', 'e2e/mount-from', sha256Of('absent'))).toBe(false)
  })

  it('maintains the referrers fallback tag (distribution has no referrers API) and reads it back', async () => {
    const subject = appendLayer(emptyImage(), await layerOf({ s: 's' }), { created })
    await pushImage(client, 'e2e/refs', 'v1', subject)
    const empty = Buffer.from('{}')
    await client.pushBlob('e2e/refs', empty, { digest: sha256Of(empty), size: 2 })
    const artifact = async (artifactType: string, content: string) => {
      const layer = Buffer.from(content)
      await client.pushBlob('e2e/refs', layer, { digest: sha256Of(layer), size: layer.length })
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType,
        config: { mediaType: MediaType.ociEmpty, digest: sha256Of(empty), size: 2, data: 'e30=' },
        layers: [
          { mediaType: 'application/octet-stream', digest: sha256Of(layer), size: layer.length },
        ],
        subject: {
          mediaType: subject.mediaType,
          digest: subject.digest,
          size: subject.manifestBytes.length,
        },
        annotations: { 'org.opencontainers.image.created': created.toISOString() },
      }
      return Buffer.from(JSON.stringify(manifest))
    }
    const streaming = await artifact(MediaType.thawStreaming, 'streaming')
    const profile = await artifact(MediaType.thawProfile, 'profile')
    const first = await client.pushReferrer('e2e/refs', streaming, MediaType.ociManifest)
    expect(first.subjectAccepted).toBe(false)
    await client.pushReferrer('e2e/refs', profile, MediaType.ociManifest)
    await client.pushReferrer('e2e/refs', profile, MediaType.ociManifest) // no duplicate

    expect(await client.listTags('e2e/refs')).toContain(referrersTag(subject.digest))
    const all = await client.referrers('e2e/refs', subject.digest)
    expect(all).toEqual([
      {
        mediaType: MediaType.ociManifest,
        digest: sha256Of(streaming),
        size: streaming.length,
        artifactType: MediaType.thawStreaming,
        annotations: { 'org.opencontainers.image.created': created.toISOString() },
      },
      expect.objectContaining({ digest: sha256Of(profile), artifactType: MediaType.thawProfile }),
    ])
    const profiles = await client.referrers('e2e/refs', subject.digest, {
      artifactType: MediaType.thawProfile,
    })
    expect(profiles.map((d) => d.digest)).toEqual([sha256Of(profile)])
    expect(await client.referrers('e2e/refs', sha256Of('no referrers'))).toEqual([])
  })
})

describe('interop with skopeo and umoci', () => {
  it('skopeo copies an image written with layout.ts into distribution, and back into a layout we read', async () => {
    const dir = await tmpDir()
    const image = appendLayer(emptyImage(), await layerOf({ 'app/x': 'x'.repeat(5000) }), {
      cmd: ['/app/x'],
      created,
    })
    await (await createLayout(dir)).writeImage(image, { tag: 'v1' })
    await skopeo(
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${dir}:v1`,
      `docker://${registry.address}/e2e/skopeo-in:v1`,
    )
    const pushed = await client.getManifest('e2e/skopeo-in', 'v1')
    expect(pushed.digest).toBe(image.digest)
    expect(await blobsOf(await pullImage(client, 'e2e/skopeo-in', 'v1'))).toEqual(
      await blobsOf(image),
    )

    const back = await tmpDir()
    await skopeo(
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${registry.address}/e2e/skopeo-in:v1`,
      `oci:${back}:back`,
    )
    const read = await (await openLayout(back)).image('back')
    expect(read.digest).toBe(image.digest)
    expect(await blobsOf(read)).toEqual(await blobsOf(image))
  })

  it('skopeo pulls an image built with appendLayer and pushed by the client, with byte-identical blobs', async () => {
    const base = appendLayer(emptyImage(), await layerOf({ 'etc/os-release': 'ID=test' }), {
      env: { PATH: '/bin' },
      created,
    })
    await pushImage(client, 'e2e/base', 'v1', base)
    const pulledBase = await pullImage(client, 'e2e/base', 'v1')
    const app = appendLayer(pulledBase, await layerOf({ 'app/main.js': 'console.log("hi")' }), {
      entrypoint: ['node', '/app/main.js'],
      workingDir: '/app',
      created,
    })
    const progress: number[] = []
    const { digest } = await pushImage(client, 'e2e/app', 'v1', app, {
      mountFrom: 'e2e/base',
      onProgress: (p) => progress.push(p.bytes),
    })
    expect(digest).toBe(app.digest)
    expect(progress.at(-1)).toBe(
      app.manifest.layers.reduce((n, l) => n + l.size, app.manifest.config.size),
    )

    const dir = await tmpDir()
    await skopeo(
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${registry.address}/e2e/app:v1`,
      `oci:${dir}:v1`,
    )
    const files = new Map<string, Buffer>()
    for (const name of await readdir(join(dir, 'blobs', 'sha256')))
      files.set(`sha256:${name}`, await readFile(join(dir, 'blobs', 'sha256', name)))
    expect(files.get(app.digest)).toEqual(app.manifestBytes)
    for (const [d, bytes] of await blobsOf(app)) expect(files.get(d), d).toEqual(bytes)
    const inspected = JSON.parse((await skopeo('inspect', '--config', `oci:${dir}:v1`)).stdout)
    expect(inspected.config.Entrypoint).toEqual(['node', '/app/main.js'])
    expect(inspected.config.Env).toEqual(['PATH=/bin'])
  })

  it('reads a layout umoci made, and umoci reads one layout.ts wrote', async () => {
    const dir = join(await tmpDir(), 'umoci')
    await run('umoci', ['init', '--layout', dir])
    await run('umoci', ['new', '--image', `${dir}:base`])
    await run('umoci', [
      'config',
      '--image',
      `${dir}:base`,
      '--tag',
      'configured',
      '--config.env',
      'GREETING=hello',
      '--config.cmd',
      '/hi',
    ])
    const layout = await openLayout(dir)
    const image = await layout.image('configured')
    expect(image.config.config?.Env).toContain('GREETING=hello')
    expect(image.config.config?.Cmd).toEqual(['/hi'])

    const app = appendLayer(image, await layerOf({ 'hi.txt': 'hi' }), {
      created,
      createdBy: 'thaw test',
    })
    await layout.writeImage(app, { tag: 'app' })
    const stat = await run('umoci', ['stat', '--image', `${dir}:app`, '--json'])
    const history = JSON.parse(stat.stdout).history as {
      created_by?: string
      layer?: { digest: string }
    }[]
    expect(history.at(-1)).toMatchObject({
      created_by: 'thaw test',
      layer: { digest: app.manifest.layers.at(-1)!.digest },
    })
    expect(await bytesOf(app.openBlob(app.manifest.layers.at(-1)!))).toEqual(
      await layout.readBlob(app.manifest.layers.at(-1)!.digest),
    )
  })
})
