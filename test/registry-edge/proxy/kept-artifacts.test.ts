import { describe, expect, it } from 'vitest'
import { waitForConversion, pushTarImage } from '../../support/convert-image.ts'
import { startTestEdge } from '../../support/edge-client.ts'
import { tmpDir } from '../../support/tmp.ts'

const STREAMING = 'application/vnd.thaw.streaming.v1'
const LAYERS = [
  [
    { name: 'etc/', type: 'directory' as const, mode: 0o755 },
    { name: 'etc/hostname', content: 'kept\n' },
  ],
]

async function streamingReferrers(
  url: string,
  repository: string,
  digest: string,
): Promise<string[]> {
  const res = await fetch(
    `${url}/v2/${repository}/referrers/${digest}?artifactType=${encodeURIComponent(STREAMING)}`,
  )
  return ((await res.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)
}

describe('a proxy edge in front of a registry that lets it pull but not push', () => {
  it('keeps the artifact it made (401 on its push) and lists and serves it as if upstream', async () => {
    // The upstream: an edge whose content was pushed before anonymous callers lost push.
    const store = await tmpDir('thaw-kept-upstream-')
    const open = await startTestEdge({ store })
    const image = await pushTarImage(open.url, 'ci/app', 'v1', LAYERS)
    await open.close()
    const upstream = await startTestEdge({
      store,
      auth: { access: [{ repository: '**', anonymous: true, actions: ['pull'] }] },
    })
    const proxy = await startTestEdge({ upstream: { upstream: upstream.url }, conversion: {} })

    const status = await waitForConversion(proxy.url, 'ci/app', image.digest)
    expect(status).toMatchObject({ state: 'converted' })
    expect(await streamingReferrers(proxy.url, 'ci/app', image.digest)).toEqual([status.artifact])
    expect(await streamingReferrers(upstream.url, 'ci/app', image.digest)).toEqual([])
    const artifact = await fetch(`${proxy.url}/v2/ci/app/manifests/${String(status.artifact)}`)
    expect(artifact.status).toBe(200)
    const { layers } = (await artifact.json()) as { layers: { digest: string; size: number }[] }
    const blob = await fetch(`${proxy.url}/v2/ci/app/blobs/${layers[0]!.digest}`)
    expect(blob.status).toBe(200)
    expect((await blob.arrayBuffer()).byteLength).toBe(layers[0]!.size)
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text()
    expect(metrics).toMatch(/^thaw_edge_outputs_published_total\{target="local",.*\} 1$/m)
    // A client's own push through the proxy still gets the upstream's refusal.
    const push = await fetch(`${proxy.url}/v2/ci/app/manifests/v2`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: image.bytes,
    })
    expect(push.status).toBe(401)
  })
})
