import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, version as esbuildVersion } from 'esbuild'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../..')
const SOURCE_DIRS = [HERE, resolve(HERE, '../protocol')]

/**
 * Builds the worker into one self-contained ES module (`node <path>` runs it, Node 20+, no
 * packages needed: it imports only node:*) and returns its path. Built once per content: the file
 * is cached under `<cacheDir>/worker-<hash>.mjs`, the hash covering every source it may include
 * and the esbuild version; concurrent callers write the same bytes and rename atomically.
 */
export async function bundleWorker(options: { cacheDir?: string } = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? join(ROOT, '.thaw', 'cache')
  const hash = await sourcesHash()
  const out = join(cacheDir, `worker-${hash.slice(0, 16)}.mjs`)
  if (await exists(out)) return out
  await mkdir(cacheDir, { recursive: true })
  const result = await build({
    entryPoints: [join(HERE, 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    // The output path makes the inline source map's paths point at the real sources.
    outfile: out,
    sourcemap: 'inline',
    legalComments: 'none',
    // The worker must not carry packages: @azure/functions comes from the app's node_modules.
    packages: 'external',
    banner: { js: '// thaw functions worker, built from runtime/worker (do not edit)' },
  })
  const [file] = result.outputFiles
  if (!file) throw new Error('esbuild produced no output for the worker')
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`
  await writeFile(tmp, file.contents)
  await rename(tmp, out)
  return out
}

async function sourcesHash(): Promise<string> {
  const hash = createHash('sha256').update(`esbuild ${esbuildVersion}\n`)
  for (const dir of SOURCE_DIRS) {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort()
    for (const name of names) {
      hash.update(`${name}\n`).update(await readFile(join(dir, name)))
    }
  }
  return hash.digest('hex')
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}
