import { LRUCache } from 'lru-cache'
import type { LoginLimits } from './login-limits.ts'

interface Strikes {
  failures: number
  /** No login is tried before this time (ms since the epoch). */
  until: number
}

/**
 * Failed logins per client address and per user name, with exponential backoff (the scheme of
 * OWASP's "Blocking Brute Force Attacks": a delay that grows with each failure rather than a
 * lockout). The address limit stops one client guessing many users; the user limit stops many
 * clients guessing one user.
 *
 * The user limit would let anyone keep a user out by guessing their password, so it does not
 * apply where that user has signed in successfully before from the same address (a "known
 * device", OWASP's device cookie with the address as the device). The address limit always
 * applies. Both forget after `forgetAfterMs` without a failure; both remember at most 100 000
 * keys, least recently failed first out.
 */
export class LoginThrottle {
  readonly #limits: LoginLimits
  readonly #addresses: LRUCache<string, Strikes>
  readonly #users: LRUCache<string, Strikes>
  readonly #known: LRUCache<string, true>

  constructor(limits: LoginLimits) {
    this.#limits = limits
    const options = { max: 100_000, ttl: limits.forgetAfterMs }
    this.#addresses = new LRUCache(options)
    this.#users = new LRUCache(options)
    this.#known = new LRUCache({ max: 100_000, ttl: Math.max(limits.forgetAfterMs, 86_400_000) })
  }

  /** How long this login must wait before it may be tried, and why; undefined = try it now. */
  wait(
    address: string,
    user: string,
    now = Date.now(),
  ): { ms: number; by: 'address' | 'user' } | undefined {
    const byAddress = this.#addresses.get(address)
    if (byAddress && byAddress.until > now) return { ms: byAddress.until - now, by: 'address' }
    if (this.isKnown(address, user)) return undefined
    const byUser = this.#users.get(user)
    if (byUser && byUser.until > now) return { ms: byUser.until - now, by: 'user' }
    return undefined
  }

  /** Whether `user` has signed in from `address` lately (a known device). */
  isKnown(address: string, user: string): boolean {
    return this.#known.has(pair(address, user))
  }

  failed(address: string, user: string, now = Date.now()): void {
    this.#strike(this.#addresses, address, now)
    this.#strike(this.#users, user, now)
  }

  /** A successful login: the address becomes a known one for the user. Strikes stay. */
  succeeded(address: string, user: string): void {
    this.#known.set(pair(address, user), true)
  }

  #strike(cache: LRUCache<string, Strikes>, key: string, now: number): void {
    const strikes = cache.get(key) ?? { failures: 0, until: 0 }
    strikes.failures++
    // After `freeFailures` failures the next try waits backoffMs, and each failure doubles it.
    const over = strikes.failures - this.#limits.freeFailures
    if (over >= 0) {
      const backoff = this.#limits.backoffMs * 2 ** Math.min(over, 30)
      strikes.until = now + Math.min(this.#limits.maxBackoffMs, backoff)
    }
    cache.set(key, strikes) // (re)starts its forgetAfterMs
  }
}

function pair(address: string, user: string): string {
  return `${address}\n${user}`
}
