import { readdir, readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { z } from 'zod'
import { RouterError } from './errors.ts'
import type { KeySet } from './keys.ts'

const key = z.object({
  name: z.string().min(1),
  value: z.string().min(1),
  encrypted: z.boolean().optional(),
})
const hostSecrets = z.object({
  masterKey: key.optional(),
  functionKeys: z.array(key).optional(),
  systemKeys: z.array(key).optional(),
})
const functionSecrets = z.object({ keys: z.array(key) })

/**
 * Reads keys in Azure's `files` secret-store format (AzureWebJobsSecretStorageType=files,
 * FUNCTIONS_SECRETS_PATH; HOST HostSecrets.cs, FunctionSecrets.cs): `host.json` holds masterKey,
 * functionKeys (host keys) and systemKeys; `<function>.json` holds `{"keys":[…]}`. Encrypted
 * values (`"encrypted": true`) need Azure's key ring and are refused.
 */
export async function readSecretsDir(dir: string): Promise<KeySet> {
  const keys: KeySet = {}
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()
  } catch (err) {
    throw new RouterError(
      'KEYS_INVALID',
      `cannot read the secrets directory ${dir}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  for (const name of names) {
    const path = join(dir, name)
    const json = await readJson(path)
    if (name === 'host.json') {
      const host = parse(hostSecrets, json, path)
      if (host.masterKey) keys.master = plain(host.masterKey, path)
      keys.host = toMap(host.functionKeys, path)
      keys.system = toMap(host.systemKeys, path)
    } else {
      const fn = parse(functionSecrets, json, path)
      keys.functions ??= {}
      keys.functions[basename(name, '.json')] = toMap(fn.keys, path)
    }
  }
  return keys
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw new RouterError('KEYS_INVALID', `${path}: ${(err as Error).message}`, { cause: err })
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, path: string): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    throw new RouterError('KEYS_INVALID', `${path}: ${z.prettifyError(result.error)}`)
  }
  return result.data
}

function plain(k: z.infer<typeof key>, path: string): string {
  if (k.encrypted)
    throw new RouterError('KEYS_INVALID', `${path}: encrypted key "${k.name}" is not supported`)
  return k.value
}

function toMap(list: z.infer<typeof key>[] | undefined, path: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of list ?? []) out[k.name] = plain(k, path)
  return out
}
