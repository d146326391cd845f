import { describe, expect, it } from 'vitest'
import { DEFAULT_LOGIN_LIMITS } from '../../../registry-edge/auth/login-limits.ts'
import { LoginThrottle } from '../../../registry-edge/auth/login-throttle.ts'

const limits = { ...DEFAULT_LOGIN_LIMITS, freeFailures: 3, backoffMs: 1000, maxBackoffMs: 8000 }
const T = 1_000_000

describe('login throttle', () => {
  it('lets the free failures through, then backs off doubling up to the maximum', () => {
    const throttle = new LoginThrottle(limits)
    const waits: (number | undefined)[] = []
    for (let i = 0; i < 8; i++) {
      throttle.failed('10.0.0.1', 'alice', T)
      waits.push(throttle.wait('10.0.0.1', 'alice', T)?.ms)
    }
    expect(waits).toEqual([undefined, undefined, 1000, 2000, 4000, 8000, 8000, 8000])
    expect(throttle.wait('10.0.0.1', 'alice', T + 8000)).toBeUndefined() // the wait is over
  })

  it('backs off an address guessing many users, and a user guessed from many addresses', () => {
    const throttle = new LoginThrottle(limits)
    for (let i = 0; i < 3; i++) throttle.failed('10.0.0.1', `user${i}`, T)
    expect(throttle.wait('10.0.0.1', 'anyone', T)).toEqual({ ms: 1000, by: 'address' })
    expect(throttle.wait('10.0.0.2', 'user0', T)).toBeUndefined()
    for (let i = 0; i < 3; i++) throttle.failed(`10.1.0.${i}`, 'bob', T)
    expect(throttle.wait('10.2.0.1', 'bob', T)).toEqual({ ms: 1000, by: 'user' })
  })

  it('keeps a user signed in from a known address working while their name is being guessed', () => {
    const throttle = new LoginThrottle(limits)
    throttle.succeeded('10.0.0.7', 'alice')
    for (let i = 0; i < 10; i++) throttle.failed(`10.9.0.${i}`, 'alice', T)
    expect(throttle.wait('10.9.0.99', 'alice', T)?.by).toBe('user')
    expect(throttle.wait('10.0.0.7', 'alice', T)).toBeUndefined()
    // but not past the address limit: that address guessing would still be slowed down
    for (let i = 0; i < 3; i++) throttle.failed('10.0.0.7', 'alice', T)
    expect(throttle.wait('10.0.0.7', 'alice', T)?.by).toBe('address')
  })
})
