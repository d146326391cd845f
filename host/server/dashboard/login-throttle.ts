import { LRUCache } from 'lru-cache'
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'

/** How many wrong keys are let through per `seconds` (a fixed window, rate-limiter-flexible). */
export interface FailureLimit {
  failures: number
  seconds: number
}

export interface LoginLimits {
  /** Per client address (an IPv6 address by its /64). Default 5 a minute. */
  perAddress: FailureLimit
  /** All addresses together. Default 60 a minute. */
  global: FailureLimit
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perAddress: { failures: 5, seconds: 60 },
  global: { failures: 60, seconds: 60 },
}

/** What `take` answers: go on, or wait (`first`: this address has just gone over a limit). */
export type Take =
  { refused: false } | { refused: true; wait: number; first: boolean; limit: 'address' | 'global' }

/**
 * Limits wrong master keys at the dashboard's login, by client address and for the host as a
 * whole. Each try takes one from its address's limit and the global one before its key is looked
 * at (so concurrent tries cannot slip past); a right key gives them back. An address over its
 * limit, or any address while the host is over its own, is refused without its key being looked
 * at (429 with Retry-After), so guessing goes no faster than the limits.
 *
 * Someone else's failures never lock out an address beyond reason: its own limit is its own,
 * and an address that logged in with the right key before (the last 256, for 30 days) is not
 * held by the global limit, which only a crowd of guessing addresses can exhaust. A new address
 * then waits at most the global window.
 */
export class LoginThrottle {
  readonly #perAddress: RateLimiterMemory
  readonly #global: RateLimiterMemory
  readonly #trusted = new LRUCache<string, true>({ max: 256, ttl: 30 * 86400_000 })

  constructor(readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS) {
    const limiter = (l: FailureLimit) =>
      new RateLimiterMemory({ points: l.failures, duration: l.seconds })
    this.#perAddress = limiter(limits.perAddress)
    this.#global = limiter(limits.global)
  }

  /** Takes one try for `address`. */
  async take(address: string | undefined): Promise<Take> {
    const key = clientKey(address)
    const own = await consume(this.#perAddress, key)
    if (own) return refused(own, 'address', this.limits.perAddress)
    if (this.#trusted.has(key)) return { refused: false }
    const all = await consume(this.#global, GLOBAL)
    if (!all) return { refused: false }
    await this.#perAddress.reward(key)
    return refused(all, 'global', this.limits.global)
  }

  /** The try's key was right: the address gets its tries back and is trusted from now on. */
  async succeeded(address: string | undefined): Promise<void> {
    const key = clientKey(address)
    const trusted = this.#trusted.has(key)
    this.#trusted.set(key, true)
    await this.#perAddress.delete(key)
    if (!trusted) await this.#global.reward(GLOBAL)
  }
}

const GLOBAL = 'all'

/** Takes a point: undefined when there was one, else the limiter's answer (over its points). */
async function consume(
  limiter: RateLimiterMemory,
  key: string,
): Promise<RateLimiterRes | undefined> {
  try {
    await limiter.consume(key)
    return undefined
  } catch (err) {
    if (err instanceof RateLimiterRes) return err
    throw err
  }
}

function refused(r: RateLimiterRes, limit: 'address' | 'global', of: FailureLimit): Take {
  return {
    refused: true,
    wait: Math.max(1, Math.ceil(r.msBeforeNext / 1000)),
    first: r.consumedPoints === of.failures + 1,
    limit,
  }
}

/**
 * Whom a limit counts: an IPv4 address (also when IPv4-mapped), an IPv6 address by its /64 (one
 * client usually holds a whole /64), 'unknown' without an address.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown'
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!address.includes(':')) return address
  const [head = '', tail] = address.toLowerCase().split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
