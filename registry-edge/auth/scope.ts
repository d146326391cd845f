/**
 * Access scopes as the docker token spec writes them (distribution `docs/spec/auth/scope.md`):
 * `repository:<name>:<action>[,<action>...]`, e.g. `repository:apps/hello:pull,push`.
 * The resource type may carry a class (`repository(plugin)`); names never contain `:`.
 */
export type Action = 'pull' | 'push' | 'delete'
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete']

export interface Scope {
  type: string
  name: string
  actions: string[]
}

/** Undefined for a string that is not `type:name:actions`. */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':')
  const last = text.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  const type = text.slice(0, first).replace(/\(.*\)$/, '')
  const name = text.slice(first + 1, last)
  const actions = text
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '')
  return name ? { type, name, actions } : undefined
}

export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`
}

export function repositoryScope(name: string, actions: readonly string[]): string {
  return formatScope({ type: 'repository', name, actions: [...actions] })
}
