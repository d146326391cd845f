import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { AppState } from './app-state.ts'
import { expandGlob } from './glob.ts'
import type { Log } from './logger.ts'
import { defineReadOnly } from './read-only.ts'

/**
 * The worker's default capabilities (WORKER src/eventHandlers/getWorkerCapabilities.ts), handed to
 * the programming model, which may add to them (HttpUri in streaming mode).
 */
export const DEFAULT_CAPABILITIES: Readonly<Record<string, string>> = {
  RawHttpBodyBytes: 'true',
  RpcHttpTriggerMetadataRemoved: 'true',
  RpcHttpBodyOnly: 'true',
  IgnoreEmptyValuedRpcHttpHeaders: 'true',
  UseNullableValueDictionaryForHttp: 'true',
  WorkerStatus: 'true',
  TypedDataCollection: 'true',
  HandlesWorkerTerminateMessage: 'true',
}

interface PackageJson {
  main?: unknown
  type?: unknown
}

/** Startup failed in a way the app has to fix (Azure blocks on entry-point errors on Node 20+). */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StartupError'
  }
}

/**
 * The worker's start order (WORKER src/startApp.ts, WorkerInitHandler.ts, FunctionsMetadataHandler.ts):
 * read package.json → load every file `main` matches (CommonJS or ESM) → await the appStart hooks
 * in order → model.getCapabilities(defaults) (locks app.setup(); may start the streaming proxy) →
 * lock registration.
 */
export async function startApp(
  state: AppState,
  options: { scriptRoot: string; main?: string; log: Log },
): Promise<void> {
  const { scriptRoot, log } = options
  const pkg = await readPackageJson(scriptRoot, log)
  const pattern = options.main || (typeof pkg.main === 'string' ? pkg.main : undefined)
  if (pattern) await loadEntryPoints(state, scriptRoot, pattern, pkg, log)

  const context = defineReadOnly(
    { functionAppDirectory: scriptRoot },
    { hookData: state.appLevelOnlyHookData, appHookData: state.appHookData },
  )
  for (const hook of [...state.hooks.appStart]) await hook(context)

  const defaults = { ...DEFAULT_CAPABILITIES }
  state.capabilities = (await state.model?.getCapabilities?.(defaults)) ?? defaults
  state.locked = true
}

async function readPackageJson(scriptRoot: string, log: Log): Promise<PackageJson> {
  try {
    const value: unknown = JSON.parse(await readFile(join(scriptRoot, 'package.json'), 'utf8'))
    return typeof value === 'object' && value !== null ? (value as PackageJson) : {}
  } catch (err) {
    log('warning', 'system', `Worker failed to load package.json: ${(err as Error).message}`)
    return {}
  }
}

async function loadEntryPoints(
  state: AppState,
  scriptRoot: string,
  pattern: string,
  pkg: PackageJson,
  log: Log,
): Promise<void> {
  try {
    const files = await expandGlob(pattern, scriptRoot)
    if (files.length === 0) {
      const hint = pattern === 'index.js' ? '. Learn more here: https://aka.ms/AAla7et' : ''
      throw new Error(`Found zero files matching the supplied pattern${hint}`)
    }
    for (const file of files) {
      log('debug', 'system', `Loading entry point file "${file}"`)
      const path = join(scriptRoot, file)
      const start = Date.now()
      state.currentEntryPoint = path
      try {
        await loadFile(path, pkg)
      } finally {
        state.currentEntryPoint = undefined
      }
      const ms = Date.now() - start
      if (ms > 1000 && process.env.AZURE_FUNCTIONS_ENVIRONMENT !== 'Development') {
        log('warning', 'system', `Loading "${basename(path)}" took ${ms}ms`)
      }
      log('debug', 'system', `Loaded entry point file "${file}"`)
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new StartupError(`Worker was unable to load entry point "${pattern}": ${message}`, {
      cause: err,
    })
  }
}

/** ESM for .mjs/.mts, CommonJS for .cjs/.cts, else package.json#type decides (loadScriptFile.ts). */
export function isEsModule(path: string, pkg: PackageJson): boolean {
  if (/\.m[jt]s$/.test(path)) return true
  if (/\.c[jt]s$/.test(path)) return false
  return pkg.type === 'module'
}

async function loadFile(path: string, pkg: PackageJson): Promise<void> {
  if (isEsModule(path, pkg)) await import(pathToFileURL(path).href)
  else createRequire(path)(path)
}
