import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  Hasher,
  VerifyingStream,
  digestHex,
  isDigest,
  parseDigest,
  sha256Of,
} from '../../../runtime/oci/digest.ts'
import { isOciError } from '../../../runtime/oci/errors.ts'

const HEX = 'a'.repeat(64)
// sha256 of the empty string, a value every registry knows.
const EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

describe('parseDigest', () => {
  it.each([[`sha256:${HEX}`], [EMPTY], [`sha256:${'0123456789abcdef'.repeat(4)}`]])(
    'accepts %s',
    (value) => {
      expect(parseDigest(value)).toBe(value)
      expect(isDigest(value)).toBe(true)
    },
  )

  it.each([
    // too short
    [`sha256:${'a'.repeat(63)}`],
    // too long
    [`sha256:${'a'.repeat(65)}`],
    // uppercase hex is not canonical (image-spec: encoded portion MUST match [a-f0-9]{64})
    [`sha256:${'A'.repeat(64)}`],
    // bad character
    [`sha256:${'g'.repeat(64)}`],
    // an algorithm thaw does not accept
    [`sha512:${'a'.repeat(128)}`],
    // no algorithm
    [HEX],
    // algorithm in upper case
    [`SHA256:${HEX}`],
    // whitespace around it
    [` sha256:${HEX}`],
    [`sha256:${HEX}\n`],
    // a path traversal attempt that would be dangerous in a blob path
    ['sha256:../../etc/passwd'],
    // empty and non-strings
    [''],
    [undefined],
    [null],
    [42],
    [{ digest: `sha256:${HEX}` }],
  ])('rejects %j with DIGEST_INVALID', (value) => {
    expect(isDigest(value)).toBe(false)
    let caught: unknown
    try {
      parseDigest(value)
    } catch (err) {
      caught = err
    }
    expect(isOciError(caught, 'DIGEST_INVALID')).toBe(true)
    expect((caught as { fault: string }).fault).toBe('user')
  })

  it('digestHex returns the encoded part', () => {
    expect(digestHex(parseDigest(`sha256:${HEX}`))).toBe(HEX)
  })
})

describe('sha256Of and Hasher', () => {
  it('hash the empty input to the well-known digest', () => {
    expect(sha256Of('')).toBe(EMPTY)
    expect(new Hasher().digest()).toBe(EMPTY)
  })

  it('Hasher gives the same digest incrementally and counts bytes', () => {
    const hasher = new Hasher()
    hasher.update(Buffer.from('hello '))
    hasher.update(Buffer.from('world'))
    expect(hasher.size).toBe(11)
    expect(hasher.digest()).toBe(sha256Of('hello world'))
    expect(hasher.digest()).toBe(sha256Of('hello world'))
    expect(() => hasher.update(Buffer.from('x'))).toThrow()
  })
})

async function drain(data: Buffer[], expected: { digest?: string; size?: number }) {
  const verifier = new VerifyingStream(expected as ConstructorParameters<typeof VerifyingStream>[0])
  const received: Buffer[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      received.push(chunk)
      done()
    },
  })
  await pipeline(Readable.from(data), verifier, sink)
  return { verifier, received: Buffer.concat(received) }
}

describe('VerifyingStream', () => {
  const content = [Buffer.from('abc'), Buffer.from('defgh')]
  const digest = sha256Of('abcdefgh')

  it('passes content through unchanged when digest and size match', async () => {
    const { verifier, received } = await drain(content, { digest, size: 8 })
    expect(received.toString()).toBe('abcdefgh')
    expect(verifier.digest).toBe(digest)
    expect(verifier.size).toBe(8)
  })

  it('fails with DIGEST_INVALID when the bytes hash to something else', async () => {
    const err = await drain(content, { digest: sha256Of('abcdefgX'), size: 8 }).catch((e) => e)
    expect(isOciError(err, 'DIGEST_INVALID')).toBe(true)
  })

  it('fails with SIZE_INVALID when the content is shorter than expected', async () => {
    const err = await drain(content, { digest, size: 9 }).catch((e) => e)
    expect(isOciError(err, 'SIZE_INVALID')).toBe(true)
  })

  it('fails with SIZE_INVALID as soon as the content exceeds the size, before the end', async () => {
    const verifier = new VerifyingStream({ digest, size: 2 })
    const seen: Buffer[] = []
    verifier.on('data', (c: Buffer) => seen.push(c))
    const failed = new Promise((resolve) => verifier.on('error', resolve))
    verifier.write(Buffer.from('abc'))
    const err = await failed
    expect(isOciError(err, 'SIZE_INVALID')).toBe(true)
    // The oversized chunk never reached the consumer.
    expect(seen).toEqual([])
  })

  it('computes the digest when none is expected', async () => {
    const { verifier } = await drain(content, {})
    expect(verifier.digest).toBe(digest)
  })
})
