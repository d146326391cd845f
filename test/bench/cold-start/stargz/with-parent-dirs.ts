import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { link, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import { emptyHeader } from '../../../../runtime/format/tar/header.ts'
import { TarParser } from '../../../../runtime/format/tar/parser.ts'
import { normalizeTarPath } from '../../../../runtime/format/tar/safety.ts'
import { encodeTarHeader } from '../../../../runtime/format/tar/writer.ts'

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

export interface ParentDirsResult {
  /** Directory entries added over all layers (0: the copy is the image itself). */
  addedDirs: number
  rewrittenLayers: number
}

/**
 * The bench images are built with `umoci repack`, whose layers leave out parent directories that
 * did not change in that step (a layer has `usr/share/doc/x/` but no `usr/` or `usr/share/`).
 * Docker and BuildKit layers always carry them, and Debian's ctr-remote 0.12 needs them: optimize
 * moves each recorded file to the front of its layer together with its parents and fails when a
 * parent is not in the layer (`failed to sort tar entries: file: "usr/share": not found`).
 *
 * This writes `<layout>:<tag>` to `<outDir>` (an OCI layout, tagged `tag`) with every layer that
 * lacked a parent rewritten as: the missing directory entries (mode, owner and mtime from the
 * built root filesystem `rootfs`), then the layer's own tar bytes unchanged. The files, and so what
 * the function reads, are the same; layers that lacked nothing keep their blob. The rewritten
 * layers are gzipped at level 1: they only feed the eStargz converter, which recompresses.
 */
export async function withParentDirs(o: {
  layout: string
  tag: string
  rootfs: string
  outDir: string
}): Promise<ParentDirsResult> {
  const blob = (layout: string, digest: string) => join(layout, 'blobs', ...digest.split(':'))
  const index = JSON.parse(await readFile(join(o.layout, 'index.json'), 'utf8')) as {
    manifests: (Descriptor & { annotations?: Record<string, string> })[]
  }
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === o.tag,
  )
  if (!entry) throw new Error(`no ${o.tag} in ${o.layout}`)
  const manifest = JSON.parse(await readFile(blob(o.layout, entry.digest), 'utf8')) as {
    config: Descriptor
    layers: Descriptor[]
  }
  const config = JSON.parse(await readFile(blob(o.layout, manifest.config.digest), 'utf8')) as {
    rootfs: { diff_ids: string[] }
  }
  await rm(o.outDir, { recursive: true, force: true })
  await mkdir(join(o.outDir, 'blobs', 'sha256'), { recursive: true })
  let addedDirs = 0
  let rewrittenLayers = 0
  for (const [i, layer] of manifest.layers.entries()) {
    const missing = missingParents(await entryNames(blob(o.layout, layer.digest)))
    if (missing.length === 0) {
      await link(blob(o.layout, layer.digest), blob(o.outDir, layer.digest))
      continue
    }
    const headers = await Promise.all(missing.map((dir) => dirHeader(dir, o.rootfs)))
    const written = await prependToLayer(blob(o.layout, layer.digest), headers, o.outDir)
    manifest.layers[i] = { ...layer, mediaType: gzipMediaType(layer), ...written.blob }
    config.rootfs.diff_ids[i] = written.diffId
    addedDirs += missing.length
    rewrittenLayers++
  }
  const put = async (value: unknown) => {
    const bytes = Buffer.from(JSON.stringify(value))
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    await writeFile(blob(o.outDir, digest), bytes)
    return { digest, size: bytes.length }
  }
  manifest.config = { ...manifest.config, ...(await put(config)) }
  const top = { ...entry, ...(await put(manifest)) }
  await writeFile(join(o.outDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(
    join(o.outDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [top] }),
  )
  return { addedDirs, rewrittenLayers }
}

/** Every entry's canonical path in a gzipped tar layer. */
async function entryNames(path: string): Promise<Set<string>> {
  const names = new Set<string>()
  const parser = new TarParser({
    entry: (h) => void names.add(normalizeTarPath(h.name)),
    data: () => {},
    entryEnd: () => {},
  })
  await pipeline(createReadStream(path), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) parser.write(chunk)
  })
  parser.end()
  return names
}

/** Ancestors of the entries that are not entries themselves, parents before children. */
export function missingParents(names: ReadonlySet<string>): string[] {
  const missing = new Set<string>()
  for (const name of names) {
    const parts = name.split('/')
    for (let k = 1; k < parts.length; k++) {
      const dir = parts.slice(0, k).join('/')
      if (!names.has(dir)) missing.add(dir)
    }
  }
  return [...missing].sort()
}

async function dirHeader(dir: string, rootfs: string): Promise<Buffer> {
  const h = emptyHeader(dir, 'directory')
  const st = await lstat(join(rootfs, dir)).catch(() => undefined)
  if (st?.isDirectory()) {
    h.mode = st.mode & 0o7777
    h.uid = st.uid
    h.gid = st.gid
    h.mtime = Math.floor(st.mtimeMs / 1000)
  }
  return encodeTarHeader(h)
}

/** gzip(headers + gunzip(layer)), hashed on both sides of the gzip as it streams. */
async function prependToLayer(path: string, headers: Buffer[], outDir: string) {
  const tmp = join(outDir, 'blobs', `.tmp-${process.pid}-${Date.now()}`)
  const diff = createHash('sha256')
  const compressed = createHash('sha256')
  let size = 0
  let first = true
  const tee = (hash: ReturnType<typeof createHash>, count = false) =>
    new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        hash.update(chunk)
        if (count) size += chunk.length
        done(null, chunk)
      },
    })
  const prepend = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (first) {
        first = false
        this.push(Buffer.concat(headers))
      }
      done(null, chunk)
    },
  })
  await pipeline(
    createReadStream(path),
    createGunzip(),
    prepend,
    tee(diff),
    createGzip({ level: 1 }),
    tee(compressed, true),
    createWriteStream(tmp),
  )
  const digest = `sha256:${compressed.digest('hex')}`
  await rename(tmp, join(outDir, 'blobs', 'sha256', digest.slice(7)))
  return { blob: { digest, size }, diffId: `sha256:${diff.digest('hex')}` }
}

function gzipMediaType(layer: Descriptor): string {
  return layer.mediaType.includes('docker')
    ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    : 'application/vnd.oci.image.layer.v1.tar+gzip'
}
