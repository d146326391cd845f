import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AuthLevel } from './route-table.ts'

/**
 * The keys of one app (Azure's model, DOCS function-keys-how-to.md): the master key (admin level,
 * opens everything), host keys (function level for every function), system keys (extension
 * webhooks), and per-function keys. Each map is key name → key value.
 */
export interface KeySet {
  master?: string
  host?: Record<string, string>
  system?: Record<string, string>
  /** Function name (case-insensitive) → key name → value. */
  functions?: Record<string, Record<string, string>>
}

/** The level a presented key grants. */
export type AccessLevel = 'admin' | 'system' | 'function' | 'anonymous'

export type AuthResult =
  | { ok: true; level: AccessLevel; keyName?: string }
  | { ok: false; status: 401; reason: 'missing-key' | 'unknown-key' | 'insufficient-level' }

/** What authorize() needs from a request: header lookup and the URL (for `?code=`). */
export interface KeyedRequest {
  headers: { get(name: string): string | null }
  url: URL
}

export const KEY_HEADER = 'x-functions-key'
export const KEY_QUERY = 'code'

/** The key a request presents: the `x-functions-key` header wins over `?code=` (AuthenticationLevelHandler.cs). */
export function presentedKey(request: KeyedRequest): string | undefined {
  return request.headers.get(KEY_HEADER) || request.url.searchParams.get(KEY_QUERY) || undefined
}

/**
 * The level a key grants for one function, tried in Azure's order (SecretManager
 * GetAuthorizationLevelAsync): master → admin, system key → system, host key → function, this
 * function's own key → function. Values are compared in constant time.
 */
export function keyLevel(
  key: string,
  functionName: string | undefined,
  keys: KeySet,
): { level: AccessLevel; keyName?: string } {
  if (keys.master !== undefined && same(key, keys.master))
    return { level: 'admin', keyName: 'master' }
  const system = find(key, keys.system)
  if (system) return { level: 'system', keyName: system }
  const host = find(key, keys.host)
  if (host) return { level: 'function', keyName: host }
  if (functionName) {
    const own = functionKeys(keys, functionName)
    const name = find(key, own)
    if (name) return { level: 'function', keyName: name }
  }
  return { level: 'anonymous' }
}

/**
 * Azure's authorization rule (AuthUtility.cs): anonymous always passes; admin satisfies every
 * level; otherwise the key's level must equal the required one (a system key does not open
 * function-level endpoints). Failures are 401, as Azure answers.
 */
export function authorize(
  required: AuthLevel | 'system',
  request: KeyedRequest,
  keys: KeySet,
  functionName?: string,
): AuthResult {
  const key = presentedKey(request)
  const granted =
    key === undefined ? { level: 'anonymous' as const } : keyLevel(key, functionName, keys)
  if (required === 'anonymous') return { ok: true, ...granted }
  if (granted.level === 'admin' || granted.level === required) return { ok: true, ...granted }
  if (key === undefined) return { ok: false, status: 401, reason: 'missing-key' }
  if (granted.level === 'anonymous') return { ok: false, status: 401, reason: 'unknown-key' }
  return { ok: false, status: 401, reason: 'insufficient-level' }
}

/** A new key: 32 random bytes, URL-safe base64, as Azure's generated keys (without their signature). */
export function generateKey(): string {
  return randomBytes(32).toString('base64url')
}

function functionKeys(keys: KeySet, functionName: string): Record<string, string> | undefined {
  const all = keys.functions
  if (!all) return undefined
  if (all[functionName]) return all[functionName]
  const lower = functionName.toLowerCase()
  for (const [name, set] of Object.entries(all)) if (name.toLowerCase() === lower) return set
  return undefined
}

function find(key: string, set: Record<string, string> | undefined): string | undefined {
  let found: string | undefined
  for (const [name, value] of Object.entries(set ?? {})) {
    if (same(key, value) && found === undefined) found = name
  }
  return found
}

function same(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}
