import { randomBytes, timingSafeEqual } from 'node:crypto'

export interface UiSession {
  /** The token a form sends back (logout): a second check besides SameSite and Origin. */
  csrf: string
  expiresAt: number
}

/**
 * The dashboard's logins: an opaque random token (the cookie's value) per login, kept in memory
 * only (a host restart logs everyone out), expiring after `ttlMs`, at most `max` at once (the
 * oldest goes first). The master key itself is never stored in a cookie or a session.
 */
export class UiSessions {
  readonly #sessions = new Map<string, UiSession>()

  constructor(
    readonly ttlMs = 8 * 3600_000,
    readonly max = 64,
  ) {}

  create(): { token: string; session: UiSession } {
    const token = randomBytes(32).toString('base64url')
    const session = {
      csrf: randomBytes(16).toString('base64url'),
      expiresAt: Date.now() + this.ttlMs,
    }
    this.#sessions.set(token, session)
    for (const oldest of this.#sessions.keys()) {
      if (this.#sessions.size <= this.max) break
      this.#sessions.delete(oldest)
    }
    return { token, session }
  }

  /** The live session of a cookie's token, if any. */
  get(token: string | undefined): UiSession | undefined {
    if (!token) return undefined
    const s = this.#sessions.get(token)
    if (s && s.expiresAt <= Date.now()) this.#sessions.delete(token)
    return s && s.expiresAt > Date.now() ? s : undefined
  }

  delete(token: string | undefined): void {
    if (token) this.#sessions.delete(token)
  }
}

/** Compares a form's CSRF token with the session's in constant time. */
export function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
