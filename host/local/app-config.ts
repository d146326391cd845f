import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { parseCustomHandlerConfig, type CustomHandlerConfig } from '../custom-handler/index.ts'
import { LocalRunnerError } from './errors.ts'
import { parseJsonc } from './jsonc.ts'

/** What `thaw start` reads from an app folder. */
export interface AppConfig {
  scriptRoot: string
  /** extensions.http.routePrefix (default "api"; "" allowed). */
  routePrefix: string
  /** extensions.http.customHeaders, added to every function response. */
  customHeaders: Record<string, string>
  /** host.json `functions`: only these load. */
  functions: string[] | undefined
  customHandler: CustomHandlerConfig | undefined
  localSettings: LocalSettings | undefined
}

/** local.settings.json (CT AppSettingsFile.cs), read only for local runs: never deployed. */
export interface LocalSettings {
  values: Record<string, string>
  connectionStrings: Record<string, string>
  localHttpPort: number | undefined
  cors: string[] | undefined
  corsCredentials: boolean | undefined
}

const hostJsonSchema = z.looseObject({
  version: z.literal('2.0', { error: 'host.json must have "version": "2.0"' }),
  extensions: z
    .looseObject({
      http: z
        .looseObject({
          routePrefix: z.string().optional(),
          customHeaders: z.record(z.string(), z.string()).optional(),
        })
        .optional(),
    })
    .optional(),
  functions: z.array(z.string()).optional(),
})

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String)
const localSettingsSchema = z.looseObject({
  IsEncrypted: z.boolean().optional(),
  Values: z.record(z.string(), scalar.nullable()).optional(),
  Host: z
    .looseObject({
      LocalHttpPort: z
        .union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)])
        .optional(),
      CORS: z.string().optional(),
      CORSCredentials: z.boolean().optional(),
    })
    .optional(),
  ConnectionStrings: z
    .record(z.string(), z.union([z.string(), z.looseObject({ ConnectionString: z.string() })]))
    .optional(),
})

export async function readAppConfig(
  scriptRoot: string,
  options: { localSettings?: boolean } = {},
): Promise<AppConfig> {
  const hostText = await readText(join(scriptRoot, 'host.json'))
  if (hostText === undefined) {
    throw new LocalRunnerError(
      'HOST_JSON_MISSING',
      `no host.json in ${scriptRoot}: run thaw start in a function app folder (or pass --script-root)`,
    )
  }
  const hostJson = parse('host.json', hostText)
  const host = validate('host.json', hostJsonSchema, hostJson)
  let customHandler: CustomHandlerConfig | undefined
  try {
    customHandler = parseCustomHandlerConfig(hostJson)
  } catch (err) {
    throw new LocalRunnerError('CONFIG_INVALID', (err as Error).message, { cause: err })
  }
  return {
    scriptRoot,
    routePrefix: host.extensions?.http?.routePrefix ?? 'api',
    customHeaders: host.extensions?.http?.customHeaders ?? {},
    functions: host.functions,
    customHandler,
    localSettings:
      options.localSettings === false ? undefined : await readLocalSettings(scriptRoot),
  }
}

async function readLocalSettings(scriptRoot: string): Promise<LocalSettings | undefined> {
  const text = await readText(join(scriptRoot, 'local.settings.json'))
  if (text === undefined) return undefined
  const s = validate('local.settings.json', localSettingsSchema, parse('local.settings.json', text))
  if (s.IsEncrypted === true) {
    throw new LocalRunnerError(
      'CONFIG_INVALID',
      'local.settings.json is encrypted ("IsEncrypted": true); thaw reads plain values only (func settings decrypt)',
    )
  }
  const values: Record<string, string> = {}
  for (const [k, v] of Object.entries(s.Values ?? {})) values[k] = v ?? ''
  const connectionStrings: Record<string, string> = {}
  for (const [k, v] of Object.entries(s.ConnectionStrings ?? {})) {
    connectionStrings[k] = typeof v === 'string' ? v : v.ConnectionString
  }
  return {
    values,
    connectionStrings,
    localHttpPort: s.Host?.LocalHttpPort,
    cors: s.Host?.CORS?.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    corsCredentials: s.Host?.CORSCredentials,
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new LocalRunnerError('CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`)
  }
}

function parse(name: string, text: string): unknown {
  try {
    return parseJsonc(text.replace(/^\uFEFF/, ''))
  } catch (err) {
    throw new LocalRunnerError(
      'CONFIG_INVALID',
      `${name} is not valid JSON: ${(err as Error).message}`,
    )
  }
}

function validate<T>(name: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    throw new LocalRunnerError('CONFIG_INVALID', `${name}: ${z.prettifyError(result.error)}`)
  }
  return result.data
}
