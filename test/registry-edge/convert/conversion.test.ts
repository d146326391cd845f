import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { pickStreamingArtifact, GENERATION_ANNOTATION } from '../../../runtime/artifact/index.ts'
import { openImage, parseFsIndex } from '../../../runtime/format/index.ts'
import type { Descriptor, Digest } from '../../../runtime/oci/index.ts'
import { sha256 } from '../../support/edge-client.ts'
import { startTestEdge } from '../../support/edge-client.ts'
import { pushTarImage, waitForConversion } from '../../support/convert-image.ts'

const big = randomBytes(3 * 1024 * 1024 + 17)
const LAYERS = [
  [
    { name: 'etc/', type: 'directory' as const, mode: 0o755 },
    { name: 'etc/hostname', content: 'edge\n' },
    { name: 'usr/', type: 'directory' as const, mode: 0o755 },
    { name: 'usr/lib/', type: 'directory' as const, mode: 0o755 },
    { name: 'usr/lib/big.so', content: big },
    { name: 'usr/lib/old', content: 'removed by layer 2' },
  ],
  [
    { name: 'usr/lib/.wh.old' },
    { name: 'app/', type: 'directory' as const, mode: 0o755 },
    { name: 'app/run', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { name: 'app/link', type: 'symlink' as const, linkName: '/usr/lib/big.so' },
  ],
]

async function referrers(url: string, repo: string, digest: string): Promise<Descriptor[]> {
  const res = await fetch(`${url}/v2/${repo}/referrers/${digest}`)
  return ((await res.json()) as { manifests: Descriptor[] }).manifests
}

async function blob(url: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`)
  expect(res.status).toBe(200)
  return Buffer.from(await res.arrayBuffer())
}

describe('conversion on push', () => {
  it('converts a pushed image into a streaming artifact listed by the referrers API, leaving the image as it was', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const image = await pushTarImage(url, 'apps/conv', 'v1', LAYERS)
    const status = await waitForConversion(url, 'apps/conv', image.digest)
    expect(status).toMatchObject({ state: 'converted', generation: 0, manifest: image.digest })

    const refs = await referrers(url, 'apps/conv', image.digest)
    const picked = pickStreamingArtifact(refs)!
    expect(picked.digest).toBe(status.artifact)
    expect(picked.annotations?.[GENERATION_ANNOTATION]).toBe('0')

    // The original manifest and blobs are untouched.
    const manifest = await fetch(`${url}/v2/apps/conv/manifests/v1`)
    expect(sha256(Buffer.from(await manifest.arrayBuffer()))).toBe(image.digest)
    for (const [i, digest] of image.blobs.entries()) {
      const bytes = await blob(url, 'apps/conv', digest)
      expect(sha256(bytes)).toBe(digest)
      if (i > 0) expect(bytes.equals(image.layers[i - 1]!)).toBe(true)
    }

    // Every file reads back through the index and the edge's blobs.
    const res = await fetch(`${url}/v2/apps/conv/manifests/${picked.digest}`)
    const artifact = (await res.json()) as { layers: Descriptor[]; subject: Descriptor }
    expect(artifact.subject.digest).toBe(image.digest)
    const indexDesc = artifact.layers[0]!
    const index = parseFsIndex(await blob(url, 'apps/conv', indexDesc.digest), {
      digest: indexDesc.digest as Digest,
    })
    const reader = openImage(index, {
      read: async (b, offset, length) => {
        const res = await fetch(`${url}/v2/apps/conv/blobs/${b.digest}`, {
          headers: { range: `bytes=${offset}-${offset + length - 1}` },
        })
        return new Uint8Array(await res.arrayBuffer())
      },
    })
    expect((await reader.read('/usr/lib/big.so', 0, big.length + 10)).equals(big)).toBe(true)
    expect((await reader.read('/etc/hostname', 0, 100)).toString()).toBe('edge\n')
    expect((await reader.read('/app/run', 0, 100)).toString()).toBe('#!/bin/sh\necho hi\n')
    expect(reader.readlink('/app/link')).toBe('/usr/lib/big.so')
    expect(reader.lookup('/usr/lib/old')).toBeUndefined()
    expect(reader.readdir('/')).toEqual(['app', 'etc', 'usr'])
  })
})
