import { createHash } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Layer } from './layer-tar.ts'

/**
 * A base image built on this machine, before it is an OCI image: a root filesystem directory, one
 * deterministic layer of it, and the image config fields (OCI image-spec config.md `config`) that
 * go with it. The lead's OCI layout writer turns this into an image; nothing here writes
 * manifests.
 */
export interface BaseImage {
  kind: 'node' | 'debian'
  /** The unpacked root filesystem: usable directly as a node's lower dir. */
  rootfs: string
  layer: Layer
  /** OCI platform (image-spec config.md `architecture`, `os`). */
  platform: { architecture: string; os: 'linux' }
  config: BaseImageConfig
  /** What went in, for humans: "node v20.20.2 from /usr/bin/node", "debian bookworm + nodejs". */
  description: string
  /** Hash of the inputs; a cached build is reused only when it matches. */
  key: string
}

export interface BaseImageConfig {
  Env: string[]
  Entrypoint?: string[]
  Cmd: string[]
  WorkingDir: string
  User?: string
}

/** OCI architecture names (image-spec config.md: GOARCH values) for node's `process.arch`. */
export function ociArchitecture(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }
  return names[arch] ?? arch
}

export function cacheKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)
}

const RECORD = 'base.json'

/** The finished build in `outDir` if its key matches, else undefined. */
export async function readCachedBase(outDir: string, key: string): Promise<BaseImage | undefined> {
  try {
    const base = JSON.parse(await readFile(join(outDir, RECORD), 'utf8')) as BaseImage
    return base.key === key ? base : undefined
  } catch {
    return undefined
  }
}

/** Written last, atomically: its presence means every other output is complete. */
export async function writeBaseRecord(outDir: string, base: BaseImage): Promise<void> {
  const tmp = join(outDir, `${RECORD}.tmp`)
  await writeFile(tmp, `${JSON.stringify(base, null, 2)}\n`)
  await rename(tmp, join(outDir, RECORD))
}
