import { describe, expect, it } from 'vitest'
import { UiSessions, sameToken } from '../../../../host/server/dashboard/ui-sessions.ts'

describe('UiSessions', () => {
  it('hands out distinct opaque tokens, each with its own CSRF token', () => {
    const sessions = new UiSessions()
    const a = sessions.create()
    const b = sessions.create()
    expect(a.token).not.toBe(b.token)
    expect(a.token).toMatch(/^[\w-]{43}$/) // 32 random bytes, base64url
    expect(sessions.get(a.token)?.csrf).toBe(a.session.csrf)
    expect(sessions.get('made-up')).toBeUndefined()
    expect(sessions.get(undefined)).toBeUndefined()
  })

  it('forgets a session at logout and after its lifetime', () => {
    const expired = new UiSessions(-1)
    expect(expired.get(expired.create().token)).toBeUndefined()
    const sessions = new UiSessions()
    const { token } = sessions.create()
    sessions.delete(token)
    expect(sessions.get(token)).toBeUndefined()
  })

  it('keeps at most `max` sessions, dropping the oldest', () => {
    const sessions = new UiSessions(60_000, 2)
    const [a, b, c] = [sessions.create(), sessions.create(), sessions.create()]
    expect(sessions.get(a.token)).toBeUndefined()
    expect(sessions.get(b.token)).toBeDefined()
    expect(sessions.get(c.token)).toBeDefined()
  })

  it('compares CSRF tokens whole', () => {
    expect(sameToken('abc', 'abc')).toBe(true)
    expect(sameToken('ab', 'abc')).toBe(false)
    expect(sameToken(undefined, 'abc')).toBe(false)
  })
})
