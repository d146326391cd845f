import { Limiter } from '../proxy/limiter.ts'
import type { LoginEvents } from './login-limits.ts'
import { verifyPassword } from './password-hash.ts'

/**
 * A well-formed hash of no password anyone knows (its key part is not the scrypt of anything
 * findable). Unknown user names are checked against it, so that an unknown name costs the same
 * scrypt as a known one and the time of an answer does not tell which names exist.
 */
export const DUMMY_PASSWORD_HASH = `scrypt$${'A'.repeat(22)}$${'A'.repeat(43)}`

export interface PasswordCheckerOptions {
  maxConcurrent: number
  maxQueued: number
  /** The check itself; verifyPassword (scrypt) unless a test counts the calls. */
  verify?: (password: string, hash: string) => Promise<boolean>
  events?: LoginEvents
}

/**
 * Password checks with bounded cost: at most `maxConcurrent` scrypts at once (each holds one of
 * libuv's four threads for tens of milliseconds, which file reads of every other request need
 * too), at most `maxQueued` waiting (per lane); past that the answer is 'busy' at once rather
 * than later.
 */
export class PasswordChecker {
  readonly #limiter: Limiter
  readonly #maxQueued: number
  readonly #verify: (password: string, hash: string) => Promise<boolean>
  readonly #events: LoginEvents

  constructor(options: PasswordCheckerOptions) {
    this.#limiter = new Limiter(options.maxConcurrent)
    this.#maxQueued = options.maxQueued
    this.#verify = options.verify ?? verifyPassword
    this.#events = options.events ?? {}
  }

  /**
   * Whether `password` matches `hash` (undefined: an unknown user, checked against the dummy).
   * A `priority` check (a user at an address they signed in from before) waits only behind other
   * priority checks, in a line of its own, so a flood of guesses does not hold it up.
   */
  async check(
    password: string,
    hash: string | undefined,
    priority = false,
  ): Promise<boolean | 'busy'> {
    const lane = priority ? 'priority' : 'normal'
    if (this.#limiter.waiting(lane) >= this.#maxQueued) return 'busy'
    return this.#limiter.run(async () => {
      this.#events.checked?.()
      const matches = await this.#verify(password, hash ?? DUMMY_PASSWORD_HASH)
      return matches && hash !== undefined
    }, lane)
  }
}
