import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { descriptorSchema, isDigest, type Digest } from '../../runtime/oci/index.ts'
import { isNotFound } from './atomic-files.ts'
import { StoreLayout } from './store-layout.ts'

/**
 * Verifies a store's invariants and returns every violation found (empty when consistent):
 * each blob file hashes to its name, each link names content that exists, tags and referrers
 * name manifests of their repository. Reads everything, so it is for tests and for operators
 * (`thaw edge check-store`), not for the serving path.
 */
export async function checkStore(root: string): Promise<string[]> {
  const layout = new StoreLayout(root)
  const problems: string[] = []
  const blobs = new Set<string>()
  for (const file of await filesUnder(layout.blobsDir)) {
    const hex = basename(file)
    const actual = await sha256File(file)
    if (basename(dirname(file)) !== hex.slice(0, 2) || actual !== hex) {
      problems.push(`blob ${relative(root, file)} has content sha256:${actual}`)
    } else blobs.add(`sha256:${hex}`)
  }
  for (const file of await filesUnder(layout.repositoriesDir)) {
    const problem = await checkLink(layout, file, blobs)
    if (problem) problems.push(`${relative(root, file)}: ${problem}`)
  }
  return problems
}

async function checkLink(layout: StoreLayout, file: string, blobs: Set<string>): Promise<string | undefined> {
  const parts = relative(layout.repositoriesDir, file).split('/')
  const at = parts.findIndex((p) => p.startsWith('_'))
  const repository = parts.slice(0, at).join('/')
  const kind = parts.slice(at, -1).join('/')
  const name = parts.at(-1)!
  const text = await readFile(file, 'utf8')
  const named = `sha256:${name}` as Digest
  switch (kind.startsWith('_referrers/') ? '_referrers' : kind) {
    case '_layers/sha256':
      return blobs.has(named) ? undefined : `names missing blob ${named}`
    case '_manifests/revisions/sha256':
      if (!text) return 'has no media type'
      return blobs.has(named) ? undefined : `names missing manifest ${named}`
    case '_manifests/tags': {
      if (!isDigest(text)) return `holds ${JSON.stringify(text.slice(0, 80))}, not a digest`
      return (await exists(layout.revision(repository, text))) ? undefined : `tags missing ${text}`
    }
    case '_referrers': {
      const parsed = descriptorSchema.safeParse(safeJson(text))
      if (!parsed.success || parsed.data.digest !== named) return 'is not its own descriptor'
      return (await exists(layout.revision(repository, named))) ? undefined : `lists missing ${named}`
    }
    default:
      return `unexpected file in ${kind}`
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true })
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
  } catch (err) {
    if (isNotFound(err)) return []
    throw err
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path)
    return true
  } catch (err) {
    if (isNotFound(err)) return false
    throw err
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
