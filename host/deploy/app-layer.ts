import { posix } from 'node:path'
import { emptyHeader } from '../../runtime/format/tar/header.ts'
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from '../../runtime/format/tar/writer.ts'
import { layerFromTar, type Layer } from '../../runtime/oci/layer.ts'
import type { AppFile } from './app-files.ts'

export interface AppLayerOptions {
  /** Where the files go in the image, e.g. `/home/site/wwwroot`. */
  root: string
  /** Every entry's mtime, seconds since the epoch (default 0: the same folder, the same digest). */
  mtime?: number
}

/**
 * The app's files as one deterministic tar: entries sorted component by component (a folder
 * right before its contents), every parent folder of `root` and of each file present, owner
 * 0:0, mode 0755 for folders and executables and 0644 for the rest, one fixed mtime, no user or
 * group names. Written with runtime/format's ustar/pax encoder, which gives the same bytes for
 * the same headers. Later files with the same path replace earlier ones.
 */
export function appLayerTar(files: readonly AppFile[], options: AppLayerOptions): Buffer {
  const mtime = options.mtime ?? 0
  const root = posix.normalize(options.root).replace(/^\/+|\/+$/g, '')
  const byPath = new Map<string, AppFile>()
  for (const f of files) byPath.set(posix.join(root, f.path), f)
  const dirs = new Set<string>()
  for (const path of [...byPath.keys(), `${root}/.`]) {
    for (let d = posix.dirname(path); d !== '.' && d !== '/' && d !== ''; d = posix.dirname(d))
      dirs.add(d)
  }
  const entries = [
    ...[...dirs].map((p) => ({ path: p, file: undefined })),
    ...[...byPath].map(([p, file]) => ({ path: p, file })),
  ]
  entries.sort((a, b) => comparePaths(a.path, b.path))
  const chunks: Buffer[] = []
  for (const { path, file } of entries) {
    const header = emptyHeader(path, file ? 'file' : 'directory')
    header.mtime = mtime
    if (file) {
      header.size = file.data.length
      header.mode = file.executable ? 0o755 : 0o644
      chunks.push(encodeTarHeader(header), file.data, Buffer.alloc(paddingFor(file.data.length)))
    } else {
      header.mode = 0o755
      chunks.push(encodeTarHeader(header))
    }
  }
  chunks.push(END_OF_ARCHIVE)
  return Buffer.concat(chunks)
}

/** The app layer as an OCI layer (gzip, which every runtime and registry takes). */
export async function appLayer(
  files: readonly AppFile[],
  options: AppLayerOptions,
): Promise<Layer> {
  return layerFromTar(appLayerTar(files, options))
}

/** Byte order of the path components, so `a/` and everything in it come before `a-b`. */
function comparePaths(a: string, b: string): number {
  const x = a.split('/')
  const y = b.split('/')
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(Buffer.from(x[i]!), Buffer.from(y[i]!))
    if (c !== 0) return c
  }
  return x.length - y.length
}
