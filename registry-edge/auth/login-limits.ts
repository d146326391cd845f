/**
 * How the edge slows password guessing (config `auth.loginLimits`, README "Auth"). Every Basic
 * login costs a scrypt (password-hash.ts), so unbounded guessing is both a way in and a way to
 * take the CPU and the thread pool from everyone else.
 */
export interface LoginLimits {
  /** Failed logins allowed per client address and per user name before backoff starts. */
  freeFailures: number
  /** The first wait after them; it doubles with each further failure, up to `maxBackoffMs`. */
  backoffMs: number
  maxBackoffMs: number
  /** An address or user with no failed login for this long starts afresh. */
  forgetAfterMs: number
  /** Password checks (scrypt) running at once; the others wait in line. */
  maxConcurrentChecks: number
  /**
   * Checks that may wait in line; past it a login is answered 429 at once. A user at an address
   * they signed in from before waits in a line of their own, served first.
   */
  maxQueuedChecks: number
}

/**
 * Five tries before any wait, then 1 s, 2 s, 4 s … up to 15 min: a person who mistypes is not
 * slowed down, a guesser gets about 20 tries in the first hour instead of 120 000. Two checks
 * at once leave the rest of libuv's four threads to file I/O.
 */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  freeFailures: 5,
  backoffMs: 1000,
  maxBackoffMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxConcurrentChecks: 2,
  maxQueuedChecks: 32,
}

/** Why a login was not tried: the address or the user is backing off, or too many wait. */
export type LoginRefusal = 'address' | 'user' | 'busy'

/** What the login checks report, for metrics. */
export interface LoginEvents {
  /** A password was checked with scrypt (against a user's hash or the dummy one). */
  checked?(): void
  failed?(): void
  refused?(by: LoginRefusal): void
}
