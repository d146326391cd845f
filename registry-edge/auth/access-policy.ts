import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { AccessRule, AuthConfig } from './auth-config.ts'
import { verifyPassword } from './password-hash.ts'
import { ACTIONS, type Action } from './scope.ts'

/** Who is asking: nobody, or a user whose password was checked (directly or when the token was issued). */
export type Subject = { kind: 'anonymous' } | { kind: 'user'; name: string }

/**
 * The auth config's users and grants, evaluated. Password checks are scrypt (slow on purpose), so
 * successful ones are remembered for a few minutes: Basic auth on every request stays cheap.
 */
export class AccessPolicy {
  readonly #config: AuthConfig
  readonly #rules: { pattern: RegExp; rule: AccessRule }[]
  readonly #verified = new LRUCache<string, true>({ max: 1000, ttl: 5 * 60_000 })

  constructor(config: AuthConfig) {
    this.#config = config
    this.#rules = config.access.map((rule) => ({ pattern: globToRegExp(rule.repository), rule }))
  }

  async authenticate(user: string, password: string): Promise<Subject | undefined> {
    const hash = this.#config.users[user]?.password
    if (!hash) return undefined
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('base64')
    if (!this.#verified.has(key)) {
      if (!(await verifyPassword(password, hash))) return undefined
      this.#verified.set(key, true)
    }
    return { kind: 'user', name: user }
  }

  /** The actions `subject` may perform on `repository`. */
  grants(subject: Subject, repository: string): Set<Action> {
    const out = new Set<Action>()
    for (const { pattern, rule } of this.#rules) {
      if (!appliesTo(rule, subject) || !pattern.test(repository)) continue
      for (const action of rule.actions) {
        if (action === '*') ACTIONS.forEach((a) => out.add(a))
        else out.add(action)
      }
    }
    return out
  }
}

function appliesTo(rule: AccessRule, subject: Subject): boolean {
  if (rule.anonymous) return true
  if (subject.kind !== 'user') return false
  return rule.users?.some((u) => u === '*' || u === subject.name) ?? false
}

/** `*` matches within one path component, `**` across components; everything else literally. */
export function globToRegExp(glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!
    if (ch === '*' && glob[i + 1] === '*') {
      source += '.*'
      i++
    } else if (ch === '*') source += '[^/]*'
    else source += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`)
}
