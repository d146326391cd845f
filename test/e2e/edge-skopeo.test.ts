import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildTestImage, readLayoutBlob, readLayoutImage, type TestImage } from '../support/edge-image.ts'
import { expectStatus, pushBlob, pushManifest, type UploadMode } from '../support/edge-client.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
let image: TestImage
let edge: TestProcess
let address: string

beforeAll(async () => {
  image = await buildTestImage({ layers: 3, layerBytes: 1024 * 1024 })
  const port = await freePort()
  edge = startProcess(THAW, ['edge', '--port', String(port), '--store', await tmpDir('thaw-edge-e2e-')])
  await edge.waitFor(/"msg":"listening"/)
  address = `127.0.0.1:${port}`
})

/** Copies the image back out of the edge with skopeo and checks it is the same, byte for byte. */
async function expectPullsBackIdentical(repo: string): Promise<void> {
  const out = join(await tmpDir('thaw-pulled-'), 'layout')
  await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${address}/${repo}:${image.tag}`, `oci:${out}:${image.tag}`])
  const original = await readLayoutImage(image.layout, image.tag)
  const pulled = await readLayoutImage(out, image.tag)
  expect(pulled.digest).toBe(original.digest)
  expect(pulled.bytes.equals(original.bytes)).toBe(true)
  expect(pulled.blobs).toEqual(original.blobs)
  expect(original.blobs).toHaveLength(4) // config + 3 layers
  for (const digest of original.blobs) {
    const [a, b] = await Promise.all([readLayoutBlob(image.layout, digest), readLayoutBlob(out, digest)])
    expect(b.equals(a), digest).toBe(true)
  }
}

describe('skopeo against the edge', () => {
  it('copies a multi-layer OCI image in and back out, manifests and blobs byte-identical', async () => {
    const before = edge.output().length
    await run('skopeo', [
      'copy', '--preserve-digests', '--dest-tls-verify=false',
      `oci:${image.layout}:${image.tag}`, `docker://${address}/apps/hello:${image.tag}`,
    ])
    // skopeo streams each blob as POST + PATCH (no Content-Range) + PUT ?digest.
    const log = edge.output().slice(before)
    expect(log).toMatch(/"method":"PATCH","path":"\/v2\/apps\/hello\/blobs\/uploads\/[0-9a-f-]+","status":202/)
    await expectPullsBackIdentical('apps/hello')
  })

  it.each(['monolithic', 'chunked'] as UploadMode[])(
    'serves skopeo an image pushed with %s uploads, byte-identical',
    async (mode) => {
      const url = `http://${address}`
      const repo = `apps/${mode}`
      const original = await readLayoutImage(image.layout, image.tag)
      for (const digest of original.blobs) {
        const blob = await readLayoutBlob(image.layout, digest)
        expect(await pushBlob(url, repo, blob, mode, 256 * 1024)).toBe(digest)
      }
      await expectStatus(await pushManifest(url, repo, image.tag, original.bytes.toString()), 201)
      await expectPullsBackIdentical(repo)
    },
  )
})
