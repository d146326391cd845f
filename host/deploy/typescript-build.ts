import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { transform } from 'esbuild'
import { parseJsonc } from '../local/jsonc.ts'
import { walk, type AppFile } from './app-files.ts'
import { DeployError } from './errors.ts'

/** A TypeScript app's build: the emitted JavaScript files, and what to leave out of the image. */
export interface TypeScriptBuild {
  files: AppFile[]
  /** Ignore rules for the sources and the (possibly stale) output folder on disk. */
  ignore: string[]
}

interface TsConfig {
  compilerOptions?: { outDir?: unknown; rootDir?: unknown; module?: unknown; target?: unknown }
  include?: unknown
  exclude?: unknown
}

const SOURCE = /\.(c|m)?ts$/

/**
 * Compiles a TypeScript app as `tsc` would lay it out (tsconfig `include`, `rootDir`, `outDir`,
 * `module`), without type checking: each source is transformed by esbuild on its own (no
 * bundling), so package.json `main` (e.g. `dist/src/functions/*.js`) finds the files where tsc
 * would have put them. Undefined when the folder has no tsconfig.json.
 */
export async function buildTypeScript(appDir: string): Promise<TypeScriptBuild | undefined> {
  const tsconfig = await readJson<TsConfig>(join(appDir, 'tsconfig.json'))
  if (!tsconfig) return undefined
  const pkg = await readJson<{ type?: unknown }>(join(appDir, 'package.json'))
  const options = tsconfig.compilerOptions ?? {}
  const outDir = clean(options.outDir)
  const rootDir = clean(options.rootDir) ?? ''
  const sources = await findSources(appDir, tsconfig, outDir)
  const esm = isEsm(options.module, pkg?.type)
  const files: AppFile[] = []
  for (const source of sources.sort()) {
    const code = await readFile(join(appDir, source), 'utf8')
    const format = source.endsWith('.mts')
      ? 'esm'
      : source.endsWith('.cts')
        ? 'cjs'
        : esm
          ? 'esm'
          : 'cjs'
    let js: string
    try {
      js = (await transform(code, { loader: 'ts', format, target: 'node20', sourcefile: source }))
        .code
    } catch (err) {
      throw new DeployError('TYPESCRIPT_BUILD_FAILED', `${source}: ${(err as Error).message}`)
    }
    const rel =
      rootDir && source.startsWith(`${rootDir}/`) ? source.slice(rootDir.length + 1) : source
    const out = (outDir ? posix.join(outDir, rel) : rel).replace(/\.(c|m)?ts$/, '.$1js')
    files.push({ path: out, data: Buffer.from(js), executable: false })
  }
  const ignore = ['*.ts', '*.mts', '*.cts', 'tsconfig.json', ...(outDir ? [`/${outDir}/`] : [])]
  return { files, ignore }
}

async function findSources(
  appDir: string,
  tsconfig: TsConfig,
  outDir: string | undefined,
): Promise<string[]> {
  const include = Array.isArray(tsconfig.include)
    ? tsconfig.include.filter((i) => typeof i === 'string')
    : ['']
  const found = new Set<string>()
  for (const pattern of include) {
    // The folder before the first wildcard: tsc's include patterns are globs under it.
    const wild = pattern.search(/[*?]/)
    const base = clean(wild < 0 ? pattern : pattern.slice(0, wild).replace(/[^/]*$/, '')) ?? ''
    const files: AppFile[] = []
    try {
      await walk(
        appDir,
        base,
        (e) =>
          e.path === 'node_modules' ||
          e.path.startsWith('.') ||
          e.path === outDir ||
          (e.isDirectory && /(^|\/)(node_modules|test|tests|__tests__)$/.test(e.path)),
        files,
      )
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        found.add(base)
        continue
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    for (const f of files) if (SOURCE.test(f.path) && !f.path.endsWith('.d.ts')) found.add(f.path)
  }
  return [...found]
}

function isEsm(module: unknown, type: unknown): boolean {
  const m = typeof module === 'string' ? module.toLowerCase() : ''
  if (m === 'commonjs' || m === 'umd' || m === 'amd') return false
  if (m.startsWith('es')) return true
  return type === 'module'
}

function clean(dir: unknown): string | undefined {
  if (typeof dir !== 'string') return undefined
  const d = posix.normalize(dir.replace(/\\/g, '/')).replace(/^\.\/?|\/$/g, '')
  return d === '.' ? '' : d
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    return parseJsonc(text) as T
  } catch (err) {
    throw new DeployError(
      'APP_CONFIG_INVALID',
      `${path} is not valid JSON: ${(err as Error).message}`,
    )
  }
}
