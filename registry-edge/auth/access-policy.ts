import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { loginLimitsOf, type AccessRule, type AuthConfig } from './auth-config.ts'
import { PasswordChecker } from './password-checker.ts'
import { ACTIONS, type Action } from './scope.ts'

/** Who is asking: nobody, or a user whose password was checked (directly or when the token was issued). */
export type Subject = { kind: 'anonymous' } | { kind: 'user'; name: string }

/**
 * The auth config's users and grants, evaluated. Password checks are scrypt (slow on purpose), so
 * successful ones are remembered for a few minutes: Basic auth on every request stays cheap. A
 * user name not in the config is checked against a dummy hash all the same (password-checker.ts):
 * the same work, so no answer comes back sooner for a name that does not exist.
 */
export class AccessPolicy {
  readonly #config: AuthConfig
  readonly #rules: { pattern: RegExp; rule: AccessRule }[]
  readonly #verified = new LRUCache<string, true>({ max: 1000, ttl: 5 * 60_000 })
  readonly #checker: PasswordChecker

  constructor(config: AuthConfig, checker?: PasswordChecker) {
    this.#config = config
    this.#rules = config.access.map((rule) => ({ pattern: globToRegExp(rule.repository), rule }))
    const { maxConcurrentChecks, maxQueuedChecks } = loginLimitsOf(config)
    this.#checker =
      checker ??
      new PasswordChecker({ maxConcurrent: maxConcurrentChecks, maxQueued: maxQueuedChecks })
  }

  /** The user, if the password is theirs; 'busy' when too many checks are already waiting. */
  async authenticate(
    user: string,
    password: string,
    priority = false,
  ): Promise<Subject | undefined | 'busy'> {
    const hash = Object.hasOwn(this.#config.users, user)
      ? this.#config.users[user]!.password
      : undefined
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('base64')
    if (hash === undefined || !this.#verified.has(key)) {
      const matches = await this.#checker.check(password, hash, priority)
      if (matches !== true) return matches === 'busy' ? 'busy' : undefined
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
