import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Image } from '../../../runtime/oci/image.ts'
import { layerFromTar, type Layer } from '../../../runtime/oci/layer.ts'
import { run } from '../../support/processes.ts'
import { tmpDir } from '../../support/tmp.ts'

/** A reproducible tar of `files` (path → content), made by GNU tar. */
export async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const dir = await tmpDir('thaw-tar-')
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  const out = join(await tmpDir('thaw-tar-out-'), 'layer.tar')
  await run('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-cf',
    out,
    '-C',
    dir,
    '.',
  ])
  return readFile(out)
}

export async function layerOf(files: Record<string, string>): Promise<Layer> {
  return layerFromTar(await tarOf(files))
}

/** Reads a whole stream. */
export async function bytesOf(stream: Readable | Promise<Readable>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of await stream) chunks.push(Buffer.from(c as Buffer))
  return Buffer.concat(chunks)
}

/** Every blob of an image, by digest. */
export async function blobsOf(image: Image): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const d of [image.manifest.config, ...image.manifest.layers])
    out.set(d.digest, await bytesOf(image.openBlob(d)))
  return out
}
