import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageProcessConfig } from '../../../host/sandbox/node-process.ts'

/** The image config's `config` (image-spec config.md) of `<layout>:<tag>`. */
export async function readImageConfig(layout: string, tag: string): Promise<ImageProcessConfig> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'))
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[]
  }
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  )
  if (!entry) throw new Error(`no image tagged ${tag} in ${layout}`)
  const manifest = JSON.parse(await readFile(blob(entry.digest), 'utf8')) as {
    config: { digest: string }
  }
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as {
    config?: ImageProcessConfig
  }
  return config.config ?? {}
}
