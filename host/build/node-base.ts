import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { copyBinaryWithLibraries } from '../os/host-files.ts'
import { runCommand } from '../os/run-command.ts'
import { DEFAULT_PATH } from '../sandbox/node-process.ts'
import { writeBaseEtc } from './base-etc.ts'
import {
  cacheKey,
  ociArchitecture,
  readCachedBase,
  writeBaseRecord,
  type BaseImage,
} from './base-image.ts'
import { writeLayerTar } from './layer-tar.ts'

// Bump when the layout of the built root filesystem changes, so cached builds are redone.
const BUILDER_VERSION = 1

/** Host programs every Node.js base carries besides node: a shell for shell entrypoints, and env. */
const EXTRA_PROGRAMS = ['/bin/sh', '/usr/bin/env']

export interface NodeBaseOptions {
  /** Output directory: `rootfs/`, `layer.tar`, `layer.tar.gz`, `base.json`. */
  outDir: string
  /** The node binary to copy. Default: the one running this code. */
  node?: string
  /** Also write `layer.tar.gz` (default true; tests that only need the rootfs skip it). */
  gzip?: boolean
  signal?: AbortSignal
}

/**
 * Builds a Node.js base image from the machine's own `node`: the binary and the libraries `ldd`
 * reports (with the dynamic loader), /bin/sh and /usr/bin/env with theirs, and a minimal /etc
 * (see base-etc.ts). No network. A finished build in `outDir` with the same inputs (the binaries'
 * paths, sizes and mtimes) is reused.
 */
export async function buildNodeBase(options: NodeBaseOptions): Promise<BaseImage> {
  const node = options.node ?? process.execPath
  const gzip = options.gzip ?? true
  const key = cacheKey({
    BUILDER_VERSION,
    gzip,
    inputs: await describeInputs([node, ...EXTRA_PROGRAMS]),
  })
  const cached = await readCachedBase(options.outDir, key)
  if (cached) return cached
  if (process.getuid?.() !== 0) {
    throw new ThawError(
      'BUILD_NEEDS_ROOT',
      'building a base image needs root (files owned by app)',
      {
        fault: 'user',
      },
    )
  }
  await mkdir(options.outDir, { recursive: true })
  const rootfs = join(options.outDir, 'rootfs')
  const staging = `${rootfs}.tmp-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  await mkdir(staging, { mode: 0o755 })
  await writeBaseEtc(staging)
  for (const program of [node, ...EXTRA_PROGRAMS]) await copyBinaryWithLibraries(program, staging)
  const version = (await runCommand(node, ['--version'], { signal: options.signal })).stdout.trim()
  await rm(rootfs, { recursive: true, force: true })
  await rename(staging, rootfs)
  const layer = await writeLayerTar(rootfs, {
    tarPath: join(options.outDir, 'layer.tar'),
    gzip,
    signal: options.signal,
  })
  const base: BaseImage = {
    kind: 'node',
    rootfs,
    layer,
    platform: { architecture: ociArchitecture(), os: 'linux' },
    config: { Env: [`PATH=${DEFAULT_PATH}`], Cmd: ['node'], WorkingDir: '/' },
    description: `node ${version} from ${node}, with ${EXTRA_PROGRAMS.join(' and ')}`,
    key,
  }
  await writeBaseRecord(options.outDir, base)
  return base
}

async function describeInputs(paths: string[]) {
  return Promise.all(
    paths.map(async (path) => {
      const s = await stat(path)
      return { path, size: s.size, mtime: s.mtimeMs, ino: s.ino }
    }),
  )
}
