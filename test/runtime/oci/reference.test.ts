import { describe, expect, it } from 'vitest'
import { isOciError } from '../../../runtime/oci/errors.ts'
import {
  formatImageReference,
  parseImageReference,
  parseManifestRef,
  parseRepositoryName,
} from '../../../runtime/oci/reference.ts'

const D = `sha256:${'b'.repeat(64)}`

describe('parseImageReference', () => {
  it.each([
    ['hello', { registry: undefined, repository: 'hello', tag: 'latest', digest: undefined }],
    [
      'apps/hello:v1',
      { registry: undefined, repository: 'apps/hello', tag: 'v1', digest: undefined },
    ],
    [
      `apps/hello@${D}`,
      { registry: undefined, repository: 'apps/hello', tag: undefined, digest: D },
    ],
    [
      `localhost:5000/a/b:t@${D}`,
      { registry: 'localhost:5000', repository: 'a/b', tag: 't', digest: D },
    ],
    ['localhost/a', { registry: 'localhost', repository: 'a', tag: 'latest', digest: undefined }],
    [
      '127.0.0.1:5000/x:1.0',
      { registry: '127.0.0.1:5000', repository: 'x', tag: '1.0', digest: undefined },
    ],
    ['[::1]:5000/x', { registry: '[::1]:5000', repository: 'x', tag: 'latest', digest: undefined }],
    [
      'registry.example.com/org/team/app:v1_2-rc.3',
      {
        registry: 'registry.example.com',
        repository: 'org/team/app',
        tag: 'v1_2-rc.3',
        digest: undefined,
      },
    ],
    // a first component without '.', ':' or "localhost" is part of the repository (docker's rule)
    [
      'myorg/app',
      { registry: undefined, repository: 'myorg/app', tag: 'latest', digest: undefined },
    ],
    // repository separators: '.', '_', '__', and runs of '-'
    [
      'org/a.b_c__d---e',
      { registry: undefined, repository: 'org/a.b_c__d---e', tag: 'latest', digest: undefined },
    ],
  ])('parses %s', (input, want) => {
    expect(parseImageReference(input)).toEqual(want)
  })

  it.each([
    // uppercase is not allowed in repository names
    ['Apps/hello', 'NAME_INVALID'],
    // empty path component
    ['a//b', 'NAME_INVALID'],
    // separator at the end of a component
    ['a-/b', 'NAME_INVALID'],
    // nothing but a digest
    [`@${D}`, 'NAME_INVALID'],
    // an empty tag
    ['a/b:', 'TAG_INVALID'],
    // a tag may not start with '.' or '-'
    ['a/b:-x', 'TAG_INVALID'],
    // a tag is at most 128 characters
    [`a/b:${'t'.repeat(129)}`, 'TAG_INVALID'],
    // a digest that is not sha256:<64 hex>
    ['a/b@sha256:abc', 'DIGEST_INVALID'],
    ['a/b@md5:0123', 'DIGEST_INVALID'],
    // a registry host with a bad port or characters
    ['host:port/a', 'NAME_INVALID'],
    ['bad_host.com/a', 'NAME_INVALID'],
    // empty input
    ['', 'NAME_INVALID'],
  ] as const)('rejects %s with %s', (input, code) => {
    let caught: unknown
    try {
      parseImageReference(input)
    } catch (err) {
      caught = err
    }
    expect(isOciError(caught, code), String(caught)).toBe(true)
  })

  it('formats what it parses back to the same string', () => {
    for (const s of [`localhost:5000/a/b:t@${D}`, 'apps/hello:v1', `x@${D}`]) {
      expect(formatImageReference(parseImageReference(s))).toBe(s)
    }
  })
})

describe('parseManifestRef and parseRepositoryName', () => {
  it('tells tags from digests', () => {
    expect(parseManifestRef('v1')).toEqual({ tag: 'v1' })
    expect(parseManifestRef(D)).toEqual({ digest: D })
  })

  it.each([
    // something with a colon that is not a valid digest
    ['sha256:xyz', 'DIGEST_INVALID'],
    // a tag with a slash
    ['a/b', 'TAG_INVALID'],
  ] as const)('rejects %s with %s', (input, code) => {
    expect(() => parseManifestRef(input)).toThrow(expect.objectContaining({ code }))
  })

  it('rejects repository names longer than 255 characters', () => {
    expect(() => parseRepositoryName('a'.repeat(256))).toThrow(
      expect.objectContaining({ code: 'NAME_INVALID' }),
    )
    expect(parseRepositoryName('a'.repeat(255))).toBe('a'.repeat(255))
  })
})
