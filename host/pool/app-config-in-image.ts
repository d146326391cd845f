import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import type { ImageConfig } from '../../runtime/oci/schemas.ts'
import { parseCustomHandlerConfig, type CustomHandlerConfig } from '../custom-handler/config.ts'
import { parseJsonc } from '../local/jsonc.ts'

/** Where Azure's images keep the app (mcr.microsoft.com/azure-functions/node). */
export const DEFAULT_SCRIPT_ROOT = '/home/site/wwwroot'

export interface ImageAppConfig {
  /** The app folder inside the image: AzureWebJobsScriptRoot from the image's Env, else its WorkingDir, else /home/site/wwwroot. */
  scriptRoot: string
  /** host.json extensions.http.routePrefix (default "api"). */
  routePrefix: string
  /** host.json extensions.http.customHeaders, added to every function answer. */
  customHeaders: Record<string, string>
  /** host.json's customHandler (or legacy httpWorker) section; undefined for @azure/functions apps. */
  customHandler: CustomHandlerConfig | undefined
}

/**
 * Reads the app's host.json from the mounted image. The read is an async fs call: the mount may
 * be served by this very process (FUSE), and a synchronous read of it would deadlock. Throws
 * CUSTOM_HANDLER_CONFIG_INVALID for a customHandler section that is not valid.
 */
export async function readImageAppConfig(
  root: string,
  config: ImageConfig,
): Promise<ImageAppConfig> {
  const env = config.config?.Env ?? []
  const fromEnv = env.find((e) => e.startsWith('AzureWebJobsScriptRoot='))?.split('=')[1]
  const workDir = config.config?.WorkingDir
  const scriptRoot = posix.resolve(
    '/',
    fromEnv || (workDir && workDir !== '/' ? workDir : DEFAULT_SCRIPT_ROOT),
  )
  let host: { extensions?: { http?: { routePrefix?: unknown; customHeaders?: unknown } } } = {}
  try {
    host = parseJsonc(await readFile(join(root, scriptRoot, 'host.json'), 'utf8')) as typeof host
  } catch {
    // No or unreadable host.json: Azure's defaults.
  }
  const prefix = host?.extensions?.http?.routePrefix
  return {
    scriptRoot,
    routePrefix: typeof prefix === 'string' ? prefix : 'api',
    customHeaders: stringRecord(host?.extensions?.http?.customHeaders),
    // An invalid section throws CUSTOM_HANDLER_CONFIG_INVALID (fault: user): the cold start fails saying why.
    customHandler: host && typeof host === 'object' ? parseCustomHandlerConfig(host) : undefined,
  }
}

/** The string values of an object (customHeaders); anything else is left out. */
function stringRecord(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {}
  return Object.fromEntries(
    Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'),
  )
}
