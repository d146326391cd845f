import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { expandGlob } from '../../runtime/worker/glob.ts'
import { parseJsonc } from './jsonc.ts'

/**
 * How to load an app locally without a build step. func start runs the compiled JavaScript
 * (main: "dist/src/functions/*.js", with `tsc -w` beside it); thaw runs the TypeScript sources
 * through tsx instead. When tsconfig.json has an outDir and main points into it, the sources are
 * found by taking main back out of outDir (into rootDir, or ".", or "src") with .ts extensions.
 * The first candidate that matches files wins; otherwise main is used as it is.
 */
export async function resolveLocalEntry(
  scriptRoot: string,
): Promise<{ main: string | undefined; typescript: boolean }> {
  const pkg = (await readJson(join(scriptRoot, 'package.json'))) as { main?: unknown } | undefined
  const tsconfig = (await readJson(join(scriptRoot, 'tsconfig.json'))) as
    { compilerOptions?: { outDir?: unknown; rootDir?: unknown } } | undefined
  const main = typeof pkg?.main === 'string' ? pkg.main.replace(/^\.\//, '') : undefined
  if (!tsconfig)
    return { main: undefined, typescript: main !== undefined && /\.[cm]?ts\b/.test(main) }
  if (!main) return { main: undefined, typescript: true }
  const outDir = clean(tsconfig.compilerOptions?.outDir)
  if (outDir && (main === outDir || main.startsWith(`${outDir}/`))) {
    const rest = main.slice(outDir.length + 1)
    const rootDir = clean(tsconfig.compilerOptions?.rootDir)
    const roots = rootDir !== undefined ? [rootDir] : ['', 'src']
    for (const root of roots) {
      const candidate = toTypeScript(root ? posix.join(root, rest) : rest)
      if ((await expandGlob(candidate, scriptRoot)).length > 0)
        return { main: candidate, typescript: true }
    }
  }
  return { main: undefined, typescript: true }
}

/** `.js` → `.ts`, `.mjs` → `.mts`, `.cjs` → `.cts`, wherever they end a name in the pattern. */
export function toTypeScript(pattern: string): string {
  return pattern.replace(/\.([cm]?)js\b/g, '.$1ts')
}

function clean(dir: unknown): string | undefined {
  if (typeof dir !== 'string') return undefined
  const d = posix.normalize(dir.replace(/\\/g, '/')).replace(/^\.\/?|\/$/g, '')
  return d === '.' ? '' : d
}

async function readJson(path: string): Promise<unknown> {
  try {
    return parseJsonc(await readFile(path, 'utf8'))
  } catch {
    return undefined
  }
}
