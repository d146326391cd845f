import { describe, expect, it } from 'vitest'
import { AccessPolicy, globToRegExp } from '../../../registry-edge/auth/access-policy.ts'
import { authConfigSchema } from '../../../registry-edge/auth/auth-config.ts'
import { TokenSigner } from '../../../registry-edge/auth/bearer-token.ts'
import { DUMMY_PASSWORD_HASH, PasswordChecker } from '../../../registry-edge/auth/password-checker.ts'
import { hashPassword, isPasswordHash, verifyPassword } from '../../../registry-edge/auth/password-hash.ts'
import { parseScope } from '../../../registry-edge/auth/scope.ts'

describe('password hashes', () => {
  it('verifies the password a hash was made from, and nothing else', async () => {
    const hash = await hashPassword('correct horse')
    expect(hash).toMatch(/^scrypt\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{43}$/)
    expect(await verifyPassword('correct horse', hash)).toBe(true)
    expect(await verifyPassword('correct horse ', hash)).toBe(false)
    expect(await verifyPassword('correct horse', 'scrypt$AAAA$BBBB')).toBe(false) // malformed
    expect(await hashPassword('correct horse')).not.toBe(hash) // salted
  })
})

describe('bearer tokens', () => {
  const signer = new TokenSigner({ key: 'k'.repeat(32), ttlSeconds: 300 })
  const access = [{ type: 'repository', name: 'apps/a', actions: ['pull'] }]

  it('round-trips the claims of a token it issued for the same service', async () => {
    const { token, expiresIn } = await signer.issue('alice', 'edge', access)
    expect(expiresIn).toBe(300)
    expect(await signer.verify(token, 'edge')).toMatchObject({ sub: 'alice', aud: 'edge', access })
  })

  it.each([
    // tokens that must not verify at service 'edge'
    ['another key', async () => (await new TokenSigner({ key: 'x'.repeat(32), ttlSeconds: 300 }).issue('alice', 'edge', access)).token],
    ['expired', async () => (await signer.issue('alice', 'edge', access, Date.now() - 301_000)).token],
    ['the same key, for another service (audience)', async () => (await signer.issue('alice', 'other-edge', access)).token],
    ['claims edited after signing', async () => {
      const [h, , s] = (await signer.issue('bob', 'edge', [])).token.split('.')
      const forged = Buffer.from(JSON.stringify({ iss: 'thaw-edge', sub: 'bob', aud: 'edge', iat: 0, exp: 9e9, access })).toString('base64url')
      return `${h}.${forged}.${s}`
    }],
    ['not a JWT', async () => 'abc'],
    ['alg none', async () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'thaw-edge', sub: 'bob', aud: 'edge', iat: 0, exp: 9e9, access })).toString('base64url')}.`],
  ])('rejects a token signed with %s', async (_name, make) => {
    expect(await signer.verify(await make(), 'edge')).toBeUndefined()
  })
})

describe('access policy', () => {
  it.each([
    ['apps/*', 'apps/hello', true],
    ['apps/*', 'apps/hello/world', false], // * stays within one component
    ['apps/**', 'apps/hello/world', true],
    ['apps', 'apps', true],
    ['apps', 'apps2', false],
    ['a.b/*', 'axb/c', false], // dots are literal
  ])('%s matches %s: %s', (glob, name, expected) => {
    expect(globToRegExp(glob).test(name)).toBe(expected)
  })

  it('adds up grants per user, for any signed-in user, and for anonymous', async () => {
    const hash = await hashPassword('pw')
    const policy = new AccessPolicy(
      authConfigSchema.parse({
        users: { alice: { password: hash }, bob: { password: hash } },
        access: [
          { repository: 'apps/**', users: ['alice'], actions: ['*'] },
          { repository: 'apps/**', users: ['*'], actions: ['pull'] },
          { repository: 'public/*', anonymous: true, actions: ['pull'] },
        ],
      }),
    )
    expect([...policy.grants({ kind: 'user', name: 'alice' }, 'apps/x')].sort()).toEqual(['delete', 'pull', 'push'])
    expect([...policy.grants({ kind: 'user', name: 'bob' }, 'apps/x')]).toEqual(['pull'])
    expect([...policy.grants({ kind: 'user', name: 'bob' }, 'public/x')]).toEqual(['pull'])
    expect([...policy.grants({ kind: 'anonymous' }, 'apps/x')]).toEqual([])
    expect([...policy.grants({ kind: 'anonymous' }, 'public/x')]).toEqual(['pull'])
    expect(await policy.authenticate('alice', 'pw')).toEqual({ kind: 'user', name: 'alice' })
    expect(await policy.authenticate('alice', 'nope')).toBeUndefined()
    expect(await policy.authenticate('mallory', 'pw')).toBeUndefined()
  })

  it('checks the password of an unknown user against a dummy hash, as much work as a known one', async () => {
    const config = authConfigSchema.parse({ users: { alice: { password: await hashPassword('pw') } } })
    const checked: string[] = []
    const verify = (password: string, hash: string) => (checked.push(hash), verifyPassword(password, hash))
    const policy = new AccessPolicy(config, new PasswordChecker({ maxConcurrent: 1, maxQueued: 10, verify }))
    // Each row: a login that must cost exactly one scrypt, like every other.
    for (const [user, password] of [['alice', 'wrong'], ['mallory', 'wrong'], ['mallory', 'pw'], ['constructor', 'x'], ['__proto__', 'x']] as const) {
      checked.length = 0
      expect(await policy.authenticate(user, password)).toBeUndefined()
      expect(checked, user).toHaveLength(1)
      expect(isPasswordHash(checked[0]!), user).toBe(true)
      expect(checked[0], user).toBe(user === 'alice' ? config.users.alice!.password : DUMMY_PASSWORD_HASH)
    }
  })

  it('runs a check for a known user and address before the guesses waiting in line', async () => {
    const order: string[] = []
    const verify = async (password: string) => {
      order.push(password)
      await new Promise((r) => setTimeout(r, 10))
      return false
    }
    const checker = new PasswordChecker({ maxConcurrent: 1, maxQueued: 10, verify })
    const guesses = ['g1', 'g2', 'g3', 'g4'].map((g) => checker.check(g, undefined))
    const known = checker.check('known', undefined, true)
    await Promise.all([...guesses, known])
    expect(order).toEqual(['g1', 'known', 'g2', 'g3', 'g4'])
  })

  it('answers busy at once when too many checks are waiting, and never runs more than allowed', async () => {
    let running = 0
    let most = 0
    const verify = async () => {
      most = Math.max(most, ++running)
      await new Promise((r) => setTimeout(r, 20))
      running--
      return false
    }
    const checker = new PasswordChecker({ maxConcurrent: 2, maxQueued: 3, verify })
    const results = await Promise.all(Array.from({ length: 8 }, () => checker.check('x', undefined)))
    expect(results.filter((r) => r === 'busy')).toHaveLength(3) // 2 running + 3 waiting took the first 5
    expect(results.filter((r) => r === false)).toHaveLength(5)
    expect(most).toBe(2)
  })

  it('parses docker scopes', () => {
    expect(parseScope('repository:apps/hello:pull,push')).toEqual({ type: 'repository', name: 'apps/hello', actions: ['pull', 'push'] })
    expect(parseScope('repository(plugin):x:pull')).toMatchObject({ type: 'repository', name: 'x' })
    expect(parseScope('nonsense')).toBeUndefined()
  })
})
