import { describe, expect, it } from 'vitest'
import { AccessPolicy, globToRegExp } from '../../../registry-edge/auth/access-policy.ts'
import { authConfigSchema } from '../../../registry-edge/auth/auth-config.ts'
import { TokenSigner } from '../../../registry-edge/auth/bearer-token.ts'
import { hashPassword, verifyPassword } from '../../../registry-edge/auth/password-hash.ts'
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

  it('round-trips the claims of a token it issued', () => {
    const { token, expiresIn } = signer.issue('alice', 'edge', access)
    expect(expiresIn).toBe(300)
    expect(signer.verify(token)).toMatchObject({ sub: 'alice', aud: 'edge', access })
  })

  it.each([
    // tokens that must not verify
    ['another key', () => new TokenSigner({ key: 'x'.repeat(32), ttlSeconds: 300 }).issue('alice', 'edge', access).token],
    ['expired', () => signer.issue('alice', 'edge', access, Date.now() - 301_000).token],
    ['claims edited after signing', () => {
      const [h, , s] = signer.issue('bob', 'edge', []).token.split('.')
      const forged = Buffer.from(JSON.stringify({ iss: 'thaw-edge', sub: 'bob', aud: 'edge', iat: 0, exp: 9e9, access })).toString('base64url')
      return `${h}.${forged}.${s}`
    }],
    ['not a JWT', () => 'abc'],
    ['alg none', () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.e30.`],
  ])('rejects a token signed with %s', (_name, make) => {
    expect(signer.verify(make())).toBeUndefined()
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

  it('parses docker scopes', () => {
    expect(parseScope('repository:apps/hello:pull,push')).toEqual({ type: 'repository', name: 'apps/hello', actions: ['pull', 'push'] })
    expect(parseScope('repository(plugin):x:pull')).toMatchObject({ type: 'repository', name: 'x' })
    expect(parseScope('nonsense')).toBeUndefined()
  })
})
