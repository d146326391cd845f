/**
 * Bearer tokens per registry and scope (distribution `docs/spec/auth/scope.md`):
 *
 *   scope = resourcetype ":" resourcename ":" action [ "," action ]*
 *   e.g.    repository:apps/hello:pull,push     registry:catalog:*
 *
 * A token serves every request whose scopes it covers: one granted `repository:a:pull,push`
 * also serves a pull of `a`, but a push after a pull-only token needs a new one.
 */
export interface Scope {
  type: string
  name: string
  actions: ReadonlySet<string>
}

export function parseScope(value: string): Scope | undefined {
  const first = value.indexOf(':')
  const last = value.lastIndexOf(':')
  if (first <= 0 || last <= first) return undefined
  return {
    type: value.slice(0, first),
    name: value.slice(first + 1, last),
    actions: new Set(
      value
        .slice(last + 1)
        .split(',')
        .filter(Boolean),
    ),
  }
}

export function repositoryScope(
  repository: string,
  actions: 'pull' | 'pull,push' | 'delete',
): string {
  return `repository:${repository}:${actions}`
}

/** Merges scope strings naming the same resource into one with the union of their actions. */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const merged = new Map<string, Set<string>>()
  for (const s of scopes) {
    const scope = parseScope(s)
    if (!scope) continue
    const key = `${scope.type}:${scope.name}`
    const actions = merged.get(key) ?? new Set<string>()
    for (const a of scope.actions) actions.add(a)
    merged.set(key, actions)
  }
  return [...merged].map(([key, actions]) => `${key}:${[...actions].sort().join(',')}`).sort()
}

function covers(granted: readonly Scope[], wanted: Scope): boolean {
  return granted.some(
    (g) =>
      g.type === wanted.type &&
      g.name === wanted.name &&
      [...wanted.actions].every((a) => g.actions.has(a) || g.actions.has('*')),
  )
}

interface Entry {
  scopes: Scope[]
  token: string
  expiresAt: number
}

export class TokenCache {
  readonly #entries = new Map<string, Entry[]>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** A token for `origin` covering every scope in `scopes` that has not expired, if any. */
  get(origin: string, scopes: readonly string[]): string | undefined {
    const wanted = scopes.map(parseScope).filter((s) => s !== undefined)
    const now = this.#now()
    const entries = this.#entries.get(origin) ?? []
    return entries.find((e) => e.expiresAt > now && wanted.every((w) => covers(e.scopes, w)))?.token
  }

  /**
   * Keeps `token` until `expiresInSeconds` minus a safety margin (10 s, or half the lifetime for
   * short-lived tokens) so it is never sent just as it expires.
   */
  set(origin: string, scopes: readonly string[], token: string, expiresInSeconds: number): void {
    const margin = Math.min(10, expiresInSeconds / 2)
    const now = this.#now()
    const entries = (this.#entries.get(origin) ?? []).filter((e) => e.expiresAt > now)
    entries.push({
      scopes: scopes.map(parseScope).filter((s) => s !== undefined),
      token,
      expiresAt: now + (expiresInSeconds - margin) * 1000,
    })
    this.#entries.set(origin, entries.slice(-64))
  }

  /** Forgets a token the registry refused. */
  delete(origin: string, token: string): void {
    const entries = this.#entries.get(origin)
    if (entries)
      this.#entries.set(
        origin,
        entries.filter((e) => e.token !== token),
      )
  }
}
