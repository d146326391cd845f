import { spawn } from 'node:child_process'
import { once } from 'node:events'
import {
  cp,
  mkdir,
  readdir,
  readFile,
  realpath,
  rename,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ThawError } from '../../runtime/errors.ts'

/** The thaw checkout this code runs from: templates/ and node_modules/ are found there. */
export const THAW_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const TEMPLATES = join(THAW_ROOT, 'templates')

/** How a new project gets its node_modules. */
export type InstallMode = 'link' | 'npm' | 'none'

export interface InitOptions {
  dir: string
  template: string
  /** The package name; default: the folder name. */
  name?: string
  /**
   * `link` (default): symlink the template's dependencies from thaw's own node_modules, and thaw
   * itself (no network; the versions thaw was tested with). `npm`: run `npm install`.
   * `none`: leave it to the user.
   */
  install?: InstallMode
  /** Write into a folder that is not empty. */
  force?: boolean
}

export class InitError extends ThawError {
  constructor(
    code: 'TEMPLATE_UNKNOWN' | 'DIR_NOT_EMPTY' | 'LINK_FAILED' | 'INSTALL_FAILED',
    message: string,
  ) {
    super(code, message, { fault: code === 'INSTALL_FAILED' ? 'system' : 'user' })
    this.name = 'InitError'
  }
}

export async function listTemplates(): Promise<string[]> {
  const entries = await readdir(TEMPLATES, { withFileTypes: true })
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
}

/**
 * Creates a project from templates/<template>: copies it (without node_modules or build output),
 * names `gitignore` `.gitignore` (a .gitignore inside thaw's repo would hide template files),
 * fills in `{{name}}` and `{{thawDependency}}` (a `file:` dependency on this checkout), then
 * installs as asked.
 */
export async function initProject(options: InitOptions): Promise<{ dir: string; files: string[] }> {
  const templates = await listTemplates()
  if (!templates.includes(options.template)) {
    throw new InitError(
      'TEMPLATE_UNKNOWN',
      `unknown template "${options.template}"; templates: ${templates.join(', ')}`,
    )
  }
  const dir = resolve(options.dir)
  await mkdir(dir, { recursive: true })
  if (!options.force && (await readdir(dir)).length > 0) {
    throw new InitError(
      'DIR_NOT_EMPTY',
      `${dir} is not empty (use --force to write into it anyway)`,
    )
  }
  const source = join(TEMPLATES, options.template)
  await cp(source, dir, {
    recursive: true,
    filter: (src) =>
      !/(^|\/)(node_modules|dist|__pycache__|\.thaw)(\/|$)/.test(relative(source, src)),
  })
  const files = await walk(dir)
  const values = {
    name: packageName(options.name ?? basename(dir)),
    thawDependency: `file:${THAW_ROOT}`,
  }
  for (const file of files) await fillIn(join(dir, file), values)
  if (files.includes('gitignore')) await rename(join(dir, 'gitignore'), join(dir, '.gitignore'))
  const install = options.install ?? 'link'
  if (files.includes('package.json') && install === 'link') await linkModules(dir)
  if (files.includes('package.json') && install === 'npm') await npmInstall(dir)
  return { dir, files: (await walk(dir)).filter((f) => !f.startsWith('node_modules/')) }
}

/** An npm package name from a folder name: lower case, [a-z0-9-._~], no leading dot or underscore. */
export function packageName(raw: string): string {
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9-._~]+/g, '-')
    .replace(/^[._-]+|-+$/g, '')
  return name || 'function-app'
}

async function fillIn(path: string, values: Record<string, string>): Promise<void> {
  const bytes = await readFile(path)
  if (bytes.includes(0)) return // binary
  const text = bytes.toString('utf8')
  const filled = text.replace(/\{\{(\w+)\}\}/g, (m, key: string) => values[key] ?? m)
  if (filled !== text) await writeFile(path, filled)
}

/**
 * Symlinks every dependency of the project's package.json from thaw's node_modules (thaw itself
 * from the checkout) and their commands into node_modules/.bin, so `npm test` and `npm start`
 * work offline with the exact versions thaw is tested with.
 */
async function linkModules(dir: string): Promise<void> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true })
  for (const name of names) {
    const target = name === 'thaw' ? THAW_ROOT : await installed(name)
    const link = join(dir, 'node_modules', name)
    await mkdir(dirname(link), { recursive: true })
    await symlink(target, link, 'dir')
    await linkBins(dir, name, target)
  }
}

async function installed(name: string): Promise<string> {
  try {
    return await realpath(join(THAW_ROOT, 'node_modules', name))
  } catch {
    throw new InitError(
      'LINK_FAILED',
      `cannot link "${name}": it is not installed in ${join(THAW_ROOT, 'node_modules')} (use --install npm)`,
    )
  }
}

async function linkBins(dir: string, name: string, target: string): Promise<void> {
  const pkg = JSON.parse(await readFile(join(target, 'package.json'), 'utf8')) as {
    bin?: string | Record<string, string>
  }
  const bins = typeof pkg.bin === 'string' ? { [name.split('/').pop()!]: pkg.bin } : (pkg.bin ?? {})
  for (const [command, file] of Object.entries(bins)) {
    const link = join(dir, 'node_modules', '.bin', command)
    await symlink(relative(dirname(link), join(dir, 'node_modules', name, file)), link)
  }
}

async function npmInstall(dir: string): Promise<void> {
  const child = spawn('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' })
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0)
    throw new InitError('INSTALL_FAILED', `npm install exited with code ${code} in ${dir}`)
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...(await walk(root, path)))
    } else if (entry.isFile() || (await stat(join(root, path))).isFile()) out.push(path)
  }
  return out.sort()
}
