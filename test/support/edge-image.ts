import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from './processes.ts'
import { tmpDir } from './tmp.ts'

/**
 * A small multi-layer OCI image built with umoci (no Docker): `umoci new`, then for each layer
 * files added to the unpacked rootfs and `umoci repack --refresh-bundle`, so every repack adds one
 * gzip layer holding just that step's files. Random content keeps layers at their size after
 * compression (about `layerBytes` each).
 */
export interface TestImage {
  /** The OCI image layout directory (`oci:<layout>:<tag>` for skopeo). */
  layout: string
  tag: string
}

export async function buildTestImage(options: { layers?: number; layerBytes?: number; tag?: string } = {}): Promise<TestImage> {
  const { layers = 3, layerBytes = 1024 * 1024, tag = 'v1' } = options
  const dir = await tmpDir('thaw-image-')
  const layout = join(dir, 'layout')
  const bundle = join(dir, 'bundle')
  const image = `${layout}:${tag}`
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', image])
  await run('umoci', ['unpack', '--image', image, bundle])
  for (let i = 0; i < layers; i++) {
    const target = join(bundle, 'rootfs', 'app', `layer-${i}`)
    await mkdir(target, { recursive: true })
    await writeFile(join(target, 'data.bin'), randomBytes(layerBytes))
    await writeFile(join(target, 'README'), `layer ${i}\n`)
    await run('umoci', ['repack', '--refresh-bundle', '--image', image, bundle])
  }
  await run('umoci', ['config', '--image', image, '--config.cmd', '/app/run'])
  return { layout, tag }
}

interface LayoutManifest {
  digest: string
  bytes: Buffer
  blobs: string[]
}

/** The manifest a layout's tag points to, and the digests of its config and layers. */
export async function readLayoutImage(layout: string, tag: string): Promise<LayoutManifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[]
  }
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
  if (!entry) throw new Error(`${layout} has no tag ${tag}`)
  const bytes = await readLayoutBlob(layout, entry.digest)
  const manifest = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] }
  return { digest: entry.digest, bytes, blobs: [manifest.config.digest, ...manifest.layers.map((l) => l.digest)] }
}

export function readLayoutBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', ...digest.split(':')))
}
