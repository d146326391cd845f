import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isDigest, type Digest } from '../../runtime/oci/index.ts'
import { isNotFound, readIfExists } from './atomic-files.ts'
import type { StoreLayout } from './store-layout.ts'

/** A link or blob file and when it was last written (ms since the epoch). */
export interface Dated {
  digest: Digest
  mtimeMs: number
}

/** What one repository of the store holds, as its link files say. */
export interface RepositoryInventory {
  name: string
  revisions: Dated[]
  layerLinks: Dated[]
  /** Subjects that have a `_referrers/sha256/<hex>/` directory. */
  subjects: Digest[]
  /** Manifests a tag points at. */
  tagged: Set<Digest>
}

/**
 * Reads the store's link files and blob files with their mtimes, for the garbage collector
 * (store-gc.ts). Files that vanish while being listed (a concurrent delete) are left out.
 */
export async function repositoryInventory(
  layout: StoreLayout,
  name: string,
): Promise<RepositoryInventory> {
  const repo = layout.repository(name)
  const [revisions, layerLinks, subjects, tags] = await Promise.all([
    datedDigests(join(repo, '_manifests', 'revisions', 'sha256')),
    datedDigests(join(repo, '_layers', 'sha256')),
    listDigests(join(repo, '_referrers', 'sha256')),
    listDir(layout.tagsDir(name)),
  ])
  const targets = await Promise.all(tags.map((t) => readIfExists(layout.tag(name, t))))
  const tagged = new Set(targets.filter(isDigest))
  return { name, revisions, layerLinks, subjects, tagged }
}

/** Every blob file: digest, size and mtime. */
export async function blobInventory(layout: StoreLayout): Promise<(Dated & { size: number })[]> {
  const out: (Dated & { size: number })[] = []
  for (const prefix of await listDir(layout.blobsDir)) {
    const dir = join(layout.blobsDir, prefix)
    for (const hex of await listDir(dir)) {
      const digest = `sha256:${hex}`
      if (!isDigest(digest)) continue
      const info = await stat(join(dir, hex)).catch(ignoreMissing)
      if (info) out.push({ digest, size: info.size, mtimeMs: info.mtimeMs })
    }
  }
  return out
}

async function datedDigests(dir: string): Promise<Dated[]> {
  const out: Dated[] = []
  for (const digest of await listDigests(dir)) {
    const info = await stat(join(dir, digest.slice('sha256:'.length))).catch(ignoreMissing)
    if (info) out.push({ digest, mtimeMs: info.mtimeMs })
  }
  return out
}

async function listDigests(dir: string): Promise<Digest[]> {
  return (await listDir(dir)).map((hex) => `sha256:${hex}`).filter(isDigest)
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isNotFound(err)) return []
    throw err
  }
}

function ignoreMissing(err: unknown): undefined {
  if (isNotFound(err)) return undefined
  throw err
}
