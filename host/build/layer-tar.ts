import { spawn } from 'node:child_process'
import { createReadStream, createWriteStream } from 'node:fs'
import { readdir, rename, rm } from 'node:fs/promises'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { Hasher, type Digest } from '../../runtime/oci/digest.ts'
import { ThawError } from '../../runtime/errors.ts'

export interface LayerFile {
  path: string
  /** sha256 of the file's bytes: the diff ID for the tar, the blob digest for the gzip. */
  digest: Digest
  size: number
}

export interface Layer {
  /** The uncompressed tar; its digest is the layer's diff ID (image-spec config.md, rootfs). */
  tar: LayerFile
  /** The same tar, gzip-compressed, when asked for. */
  gzip?: LayerFile
}

export interface WriteLayerOptions {
  /** Where the tar goes; the gzip (if any) goes to `${tarPath}.gz`. */
  tarPath: string
  gzip?: boolean
  /** Every entry's mtime (seconds since the epoch); with `clampMtime`, only newer ones. Default 0. */
  mtime?: number
  /** Keep mtimes older than `mtime` (package files), set newer ones to it (files made by the build). */
  clampMtime?: boolean
  /** Keep `security.capability` xattrs (Debian sets them on ping and friends). */
  capabilities?: boolean
  signal?: AbortSignal
}

/**
 * Writes `rootfs` as a deterministic, uncompressed tar layer with GNU tar: entries sorted by
 * name (byte order), fixed mtimes, numeric owners as they are on disk, pax format without the
 * atime/ctime records and with PID-free extended header names (GNU tar's default
 * `%d/PaxHeaders.%p/%f` embeds the PID). Entries have no `./` prefix, as Docker's layers.
 * The gzip, if asked for, is made from the finished tar (node's zlib writes mtime 0 and no name
 * in its header, so it is deterministic for a given zlib version and level). Both files are written beside their
 * final names and renamed, so a crash never leaves a truncated layer under the final name.
 */
export async function writeLayerTar(rootfs: string, options: WriteLayerOptions): Promise<Layer> {
  const entries = (await readdir(rootfs)).sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  )
  if (entries.length === 0) throw new ThawError('LAYER_EMPTY', `${rootfs} is empty`)
  const args = [
    '--create',
    '--file=-',
    `--directory=${rootfs}`,
    '--sort=name',
    '--format=pax',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    `--mtime=@${options.mtime ?? 0}`,
    ...(options.clampMtime ? ['--clamp-mtime'] : []),
    '--numeric-owner',
    ...(options.capabilities ? ['--xattrs', '--xattrs-include=security.capability'] : []),
    '--',
    ...entries,
  ]
  const tarTmp = `${options.tarPath}.tmp-${process.pid}`
  const gzPath = `${options.tarPath}.gz`
  const gzTmp = `${gzPath}.tmp-${process.pid}`
  try {
    const layer = await runTar(args, tarTmp, options.gzip ? gzTmp : undefined, options.signal)
    await rename(tarTmp, options.tarPath)
    layer.tar.path = options.tarPath
    if (layer.gzip) {
      await rename(gzTmp, gzPath)
      layer.gzip.path = gzPath
    }
    return layer
  } catch (err) {
    await Promise.all([rm(tarTmp, { force: true }), rm(gzTmp, { force: true })])
    throw err
  }
}

async function runTar(
  args: string[],
  tarPath: string,
  gzPath: string | undefined,
  signal?: AbortSignal,
): Promise<Layer> {
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'], signal })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  const tarHash = new Hasher()
  await pipeline(child.stdout, hashing(tarHash), createWriteStream(tarPath), { signal })
  const code = await exited
  if (code !== 0)
    throw new ThawError('LAYER_TAR_FAILED', `tar exited with ${code}: ${stderr.trim()}`)
  const layer: Layer = { tar: { path: tarPath, digest: tarHash.digest(), size: tarHash.size } }
  if (gzPath) {
    // A second pass over the tar (in the page cache) keeps each pipeline linear.
    const gzHash = new Hasher()
    const source = createReadStream(tarPath)
    await pipeline(source, createGzip(), hashing(gzHash), createWriteStream(gzPath), { signal })
    layer.gzip = { path: gzPath, digest: gzHash.digest(), size: gzHash.size }
  }
  return layer
}

function hashing(hasher: Hasher): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hasher.update(chunk)
      done(null, chunk)
    },
  })
}
