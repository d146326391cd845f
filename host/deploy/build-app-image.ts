import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import type { Image } from '../../runtime/oci/image.ts'
import type { Layer } from '../../runtime/oci/layer.ts'
import { appendLayer } from '../../runtime/oci/mutate.ts'
import { parseCustomHandlerConfig, type CustomHandlerConfig } from '../custom-handler/config.ts'
import { parseJsonc } from '../local/jsonc.ts'
import { collectAppFiles, readIgnoreRules, type AppFile } from './app-files.ts'
import { appImageConfig, SCRIPT_ROOT, type AppKind } from './app-image-config.ts'
import { appLayer } from './app-layer.ts'
import { DeployError } from './errors.ts'
import { collectModuleFiles, placeProductionModules } from './production-modules.ts'
import { buildTypeScript } from './typescript-build.ts'

/** An app folder read for deployment. */
export interface AppSource {
  dir: string
  /** package.json name, else the folder name, made a valid app name. */
  name: string
  kind: AppKind
  customHandler?: CustomHandlerConfig
  typescript: boolean
  /** The files of the layer, relative to the script root (built JS, production node_modules). */
  files: AppFile[]
}

/**
 * Reads an app folder made by `thaw init` (or by func init): host.json decides the kind (a
 * `customHandler` section, else an `@azure/functions` app with a package.json). A TypeScript app
 * is compiled (typescript-build.ts); a Node.js app gets its production dependencies.
 */
export async function readAppSource(appDir: string): Promise<AppSource> {
  const dir = resolve(appDir)
  const hostJson = await readJsonc(join(dir, 'host.json'))
  if (hostJson === undefined) {
    throw new DeployError(
      'APP_NOT_FOUND',
      `no host.json in ${dir}: run thaw deploy in a function app folder (thaw init makes one)`,
    )
  }
  let customHandler: CustomHandlerConfig | undefined
  try {
    customHandler = parseCustomHandlerConfig(hostJson)
  } catch (err) {
    throw new DeployError('APP_CONFIG_INVALID', (err as Error).message, { cause: err })
  }
  const pkg = (await readJsonc(join(dir, 'package.json'))) as { name?: unknown } | undefined
  if (!customHandler && !pkg) {
    throw new DeployError(
      'APP_KIND_UNKNOWN',
      `${dir} has neither a customHandler in host.json nor a package.json: not a Node.js or custom-handler app`,
    )
  }
  const kind: AppKind = customHandler ? 'custom-handler' : 'node'
  const ts = kind === 'node' ? await buildTypeScript(dir) : undefined
  const own = await collectAppFiles(dir, await readIgnoreRules(dir, ts?.ignore))
  const modules = pkg ? await collectModuleFiles(await placeProductionModules(dir)) : []
  const name = appName(
    typeof pkg?.name === 'string' ? pkg.name.replace(/^@[^/]+\//, '') : basename(dir),
  )
  return {
    dir,
    name,
    kind,
    customHandler,
    typescript: ts !== undefined,
    files: [...own, ...(ts?.files ?? []), ...modules],
  }
}

export interface BuiltAppImage {
  image: Image
  layer: Layer
  source: AppSource
}

/**
 * `base` plus one layer with the app at /home/site/wwwroot and the config for its kind (like
 * `crane append`). Reproducible: the same folder on the same base gives the same digest (fixed
 * mtimes and `created`: `mtime` seconds, default 0; sorted entries).
 */
export async function buildAppImage(
  base: Image,
  source: AppSource,
  options: { name?: string; mtime?: number } = {},
): Promise<BuiltAppImage> {
  const mtime = options.mtime ?? 0
  const layer = await appLayer(source.files, { root: SCRIPT_ROOT, mtime })
  const changes = appImageConfig({
    name: options.name ?? source.name,
    kind: source.kind,
    customHandler: source.customHandler,
    files: new Set(source.files.map((f) => f.path)),
    created: new Date(mtime * 1000),
  })
  return { image: appendLayer(base, layer, changes), layer, source }
}

/**
 * A name the host takes (a DNS label: it is reached at `<name>.<domain>`): lower case letters,
 * digits and "-", at most 40, no "-" at either end.
 */
export function appName(raw: string): string {
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '')
  return name || 'app'
}

async function readJsonc(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    return parseJsonc(text.replace(/^\uFEFF/, ''))
  } catch (err) {
    throw new DeployError(
      'APP_CONFIG_INVALID',
      `${path} is not valid JSON: ${(err as Error).message}`,
    )
  }
}
