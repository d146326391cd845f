import { gzipSync } from 'node:zlib'
import { expectStatus, pushBlob, pushManifest, sha256 } from './edge-client.ts'
import { buildTar, type TarSpec } from './tar-builder.ts'

export interface PushedImage {
  digest: string
  bytes: Buffer
  /** Config then layers, as pushed. */
  blobs: string[]
  layers: Buffer[]
}

/**
 * Pushes an image whose layers are built from tar specs (gzip-compressed, with correct DiffIDs
 * in the config) to `repo:tag` over HTTP; for the conversion tests.
 */
export async function pushTarImage(
  url: string,
  repo: string,
  tag: string,
  layers: TarSpec[][],
  platform = { os: 'linux', architecture: 'amd64' },
): Promise<PushedImage> {
  const tars = layers.map((specs) => buildTar(specs))
  const gz = tars.map((t) => gzipSync(t))
  const config = Buffer.from(
    JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) } }),
  )
  const configDigest = await pushBlob(url, repo, config)
  const layerDescriptors = []
  for (const layer of gz) {
    layerDescriptors.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: await pushBlob(url, repo, layer),
      size: layer.length,
    })
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerDescriptors,
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  await expectStatus(await pushManifest(url, repo, tag, bytes.toString()), 201)
  return { digest: sha256(bytes), bytes, blobs: [configDigest, ...layerDescriptors.map((l) => l.digest)], layers: gz }
}

/** Polls GET _thaw/status until the state is not pending/converting (or `until` matches). */
export async function waitForConversion(
  url: string,
  repo: string,
  digest: string,
  until: (status: Record<string, unknown>) => boolean = (s) => s.state !== 'pending' && s.state !== 'converting',
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const res = await fetch(`${url}/v2/${repo}/_thaw/status/${digest}`)
    if (res.status === 200) {
      const status = (await res.json()) as Record<string, unknown>
      if (until(status)) return status
    } else await res.arrayBuffer()
    if (Date.now() > deadline) throw new Error(`conversion of ${repo}@${digest} did not finish`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
