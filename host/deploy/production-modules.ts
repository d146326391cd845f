import { readFile, realpath, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { walk, type AppFile } from './app-files.ts'
import { DeployError } from './errors.ts'

/** A package to copy into the image: where it is on disk and where it goes (relative to the app). */
export interface PlacedPackage {
  name: string
  /** The package folder on disk, symlinks resolved (thaw init links them from thaw's own tree). */
  realDir: string
  /** `node_modules/<name>` or nested `node_modules/<parent>/node_modules/<name>`. */
  imageDir: string
}

interface PackageJson {
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
}

/**
 * The app's production dependencies, transitively (`dependencies` and the `optionalDependencies`
 * that are installed; never `devDependencies`), found as Node.js resolves them (each
 * `node_modules` up from the requiring package's real folder) and laid out as npm does: hoisted to
 * the app's node_modules unless another version already sits there, then nested under the
 * package that needs it. So `thaw init`'s symlinked node_modules deploy as real files.
 */
export async function placeProductionModules(appDir: string): Promise<PlacedPackage[]> {
  const root = await readPackageJson(join(appDir, 'package.json'))
  if (!root) return []
  const placed = new Map<string, PlacedPackage>() // imageDir → package
  const queue: Array<{ fromDir: string; imageDir: string; pkg: PackageJson }> = [
    { fromDir: await realpath(appDir), imageDir: '', pkg: root },
  ]
  while (queue.length > 0) {
    const { fromDir, imageDir, pkg } = queue.shift()!
    const wanted = [
      ...Object.keys(pkg.dependencies ?? {}).map((n) => ({ name: n, optional: false })),
      ...Object.keys(pkg.optionalDependencies ?? {}).map((n) => ({ name: n, optional: true })),
    ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const { name, optional } of wanted) {
      const realDir = await resolvePackage(fromDir, name)
      if (!realDir) {
        if (optional) continue
        throw new DeployError(
          'DEPENDENCY_MISSING',
          `${name} (a dependency of ${imageDir || 'the app'}) is not installed: run npm install first`,
        )
      }
      const hoisted = `node_modules/${name}`
      const nested = `${imageDir ? `${imageDir}/` : ''}node_modules/${name}`
      const target = [hoisted, nested].find(
        (d) => !placed.has(d) || placed.get(d)!.realDir === realDir,
      )
      if (!target) continue // cannot happen: nested is under a unique parent
      if (placed.has(target)) continue
      placed.set(target, { name, realDir, imageDir: target })
      queue.push({
        fromDir: realDir,
        imageDir: target,
        pkg: (await readPackageJson(join(realDir, 'package.json'))) ?? {},
      })
    }
  }
  return [...placed.values()]
}

/** The files of placed packages, each package without its own node_modules (placed apart). */
export async function collectModuleFiles(packages: readonly PlacedPackage[]): Promise<AppFile[]> {
  const out: AppFile[] = []
  for (const p of packages) {
    const files: AppFile[] = []
    await walk(
      p.realDir,
      '',
      (e) => e.isDirectory && (e.path === 'node_modules' || e.path.endsWith('/node_modules')),
      files,
    )
    for (const f of files) out.push({ ...f, path: `${p.imageDir}/${f.path}` })
  }
  return out
}

async function resolvePackage(fromDir: string, name: string): Promise<string | undefined> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    try {
      if ((await stat(join(candidate, 'package.json'))).isFile()) return await realpath(candidate)
    } catch {
      // not here; one level up
    }
    if (dirname(dir) === dir) return undefined
  }
}

async function readPackageJson(path: string): Promise<PackageJson | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    return JSON.parse(text) as PackageJson
  } catch (err) {
    throw new DeployError(
      'APP_CONFIG_INVALID',
      `${path} is not valid JSON: ${(err as Error).message}`,
    )
  }
}
