import { describe, expect, it } from 'vitest'
import { OciError } from '../../../../runtime/oci/errors.ts'
import { parseContentRange } from '../../../../runtime/oci/remote/content-range.ts'
import { nextLink } from '../../../../runtime/oci/remote/link-header.ts'
import {
  backoffDelay,
  isRetryable,
  parseRetryAfter,
  retryPolicy,
} from '../../../../runtime/oci/remote/retry.ts'
import { TokenCache, mergeScopes } from '../../../../runtime/oci/remote/token-cache.ts'
import { parseWwwAuthenticate } from '../../../../runtime/oci/remote/www-authenticate.ts'

describe('parseWwwAuthenticate', () => {
  it.each([
    [
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.example/token',
            service: 'registry.example',
            scope: 'repository:a/b:pull',
          },
        },
      ],
    ],
    // several scopes in one parameter, spaces around '=' and after commas
    [
      'Bearer realm = "r" , scope="repository:a:pull repository:b:pull,push"',
      [
        {
          scheme: 'bearer',
          params: { realm: 'r', scope: 'repository:a:pull repository:b:pull,push' },
        },
      ],
    ],
    // two challenges in one header
    [
      'Basic realm="x", Bearer realm="y",service=s',
      [
        { scheme: 'basic', params: { realm: 'x' } },
        { scheme: 'bearer', params: { realm: 'y', service: 's' } },
      ],
    ],
    // escaped quotes, unquoted tokens, case-insensitive scheme and names
    [
      'BASIC Realm="a \\"b\\"", charset=UTF-8',
      [{ scheme: 'basic', params: { realm: 'a "b"', charset: 'UTF-8' } }],
    ],
    // a token68 challenge, then a normal one
    [
      'Negotiate abc==, Basic realm="r"',
      [
        { scheme: 'negotiate', params: {} },
        { scheme: 'basic', params: { realm: 'r' } },
      ],
    ],
    // error parameters of an insufficient scope
    [
      'Bearer realm="r",error="insufficient_scope"',
      [{ scheme: 'bearer', params: { realm: 'r', error: 'insufficient_scope' } }],
    ],
    // nothing usable
    ['', []],
    ['"garbage', []],
  ])('parses %j', (header, want) => {
    expect(parseWwwAuthenticate(header)).toEqual(want)
  })
})

describe('nextLink', () => {
  const base = new URL('http://r.example/v2/a/tags/list?n=2')
  it.each([
    ['</v2/a/tags/list?n=2&last=b>; rel="next"', 'http://r.example/v2/a/tags/list?n=2&last=b'],
    ['<http://other.example/p>; rel=next', 'http://other.example/p'],
    // several links, the next one second, with other parameters
    ['</prev>; rel="prev", </next>; title="t"; rel="next"', 'http://r.example/next'],
    // rel with several values
    ['</n>; rel="last next"', 'http://r.example/n'],
    // no next link
    ['</p>; rel="prev"', undefined],
    [undefined, undefined],
  ])('reads %j', (header, want) => {
    expect(nextLink(header, base)?.href).toBe(want)
  })
})

describe('parseContentRange', () => {
  it.each([
    ['bytes 0-9/100', { start: 0, end: 9, size: 100 }],
    ['bytes 5-5/*', { start: 5, end: 5, size: undefined }],
    ['BYTES 1-2/3', { start: 1, end: 2, size: 3 }],
    // unsatisfied-range form of a 416
    ['bytes */100', undefined],
    // end before start
    ['bytes 9-0/100', undefined],
    // end at or past the length
    ['bytes 0-100/100', undefined],
    // another unit
    ['items 0-1/2', undefined],
    // the distribution upload Range form, which is not a Content-Range
    ['0-9', undefined],
    [undefined, undefined],
  ])('parses %j', (value, want) => {
    expect(parseContentRange(value)).toEqual(want)
  })
})

describe('retry policy', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
  })

  it('waits what Retry-After says, up to maxRetryAfterMs', () => {
    const policy = retryPolicy({ maxRetryAfterMs: 10_000 })
    expect(backoffDelay(policy, 1, 3000)).toBe(3000)
    expect(backoffDelay(policy, 1, 60_000)).toBe(10_000)
  })

  it('keeps jittered delays under the exponential ceiling and the maximum', () => {
    const policy = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 })
    for (let attempt = 1; attempt <= 8; attempt++) {
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(policy, attempt)
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** (attempt - 1)))
      }
    }
  })

  it('refuses a policy without attempts', () => {
    expect(() => retryPolicy({ attempts: 0 })).toThrow(/attempts/)
  })

  const net = (code: string) => Object.assign(new Error(code), { code })
  it.each([
    // status answers
    [new OciError('TOOMANYREQUESTS', 'x'), true, true],
    [new OciError('UNAVAILABLE', 'x', { status: 503 }), true, true],
    [new OciError('UNKNOWN', 'x', { status: 500 }), true, false],
    [new OciError('UNAVAILABLE', 'x', { status: 502 }), true, false],
    [new OciError('UNAVAILABLE', 'x', { status: 504 }), true, false],
    [new OciError('MANIFEST_UNKNOWN', 'x'), false, false],
    [new OciError('DIGEST_INVALID', 'x', { status: 502 }), true, false],
    // network failures: after a reset the request may have been processed
    [net('ECONNRESET'), true, false],
    [net('UND_ERR_SOCKET'), true, false],
    [net('UND_ERR_HEADERS_TIMEOUT'), true, false],
    // failures to connect: nothing was sent
    [net('ECONNREFUSED'), true, true],
    [net('UND_ERR_CONNECT_TIMEOUT'), true, true],
    // the name does not resolve: trying again will not help
    [net('ENOTFOUND'), false, false],
    // found through a cause
    [new Error('wrapped', { cause: net('ECONNRESET') }), true, false],
    // programming errors are never retried
    [new TypeError('x'), false, false],
  ])('%s: idempotent %s, not idempotent %s', (err, idempotent, other) => {
    expect(isRetryable(err, true)).toBe(idempotent)
    expect(isRetryable(err, false)).toBe(other)
  })
})

describe('TokenCache', () => {
  it('serves a narrower scope from a wider token, never the reverse', () => {
    const cache = new TokenCache(() => 0)
    cache.set('o', ['repository:a:pull'], 'pull-only', 300)
    expect(cache.get('o', ['repository:a:pull,push'])).toBeUndefined()
    cache.set('o', ['repository:a:pull,push'], 'both', 300)
    expect(cache.get('o', ['repository:a:push'])).toBe('both')
    expect(cache.get('o', ['repository:b:pull'])).toBeUndefined()
    expect(cache.get('other', ['repository:a:pull'])).toBeUndefined()
  })

  it('needs every scope of a request covered (a mount needs two repositories)', () => {
    const cache = new TokenCache(() => 0)
    cache.set('o', ['repository:a:pull,push'], 't', 300)
    expect(cache.get('o', ['repository:a:pull,push', 'repository:b:pull'])).toBeUndefined()
    cache.set('o', ['repository:a:pull,push', 'repository:b:pull'], 't2', 300)
    expect(cache.get('o', ['repository:b:pull', 'repository:a:push'])).toBe('t2')
  })

  it('forgets tokens at expiry minus the margin, and when deleted', () => {
    let now = 0
    const cache = new TokenCache(() => now)
    cache.set('o', ['registry:catalog:*'], 't', 60)
    now = 49_000
    expect(cache.get('o', ['registry:catalog:*'])).toBe('t')
    now = 50_000
    expect(cache.get('o', ['registry:catalog:*'])).toBeUndefined()
    cache.set('o', ['registry:catalog:*'], 't2', 60)
    cache.delete('o', 't2')
    expect(cache.get('o', ['registry:catalog:*'])).toBeUndefined()
  })

  it('merges scopes of the same resource', () => {
    expect(mergeScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull'])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ])
  })
})
