import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

/**
 * Password hashes for the edge's auth config: `scrypt$<salt>$<hash>`, salt and hash in base64url,
 * scrypt with N=2^14, r=8, p=1 (RFC 7914; the parameters Node documents as its defaults) and a
 * 32-byte key. Make one with `thaw edge hash-password` (reads the password from stdin).
 */
const KEY_BYTES = 32
const PARAMS = { N: 16384, r: 8, p: 1 }
const FORMAT = /^scrypt\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/

export function isPasswordHash(value: string): boolean {
  return FORMAT.test(value)
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt)
  return `scrypt$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Constant-time check of a password against a hash; false for a malformed hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const match = FORMAT.exec(encoded)
  if (!match) return false
  const expected = Buffer.from(match[2]!, 'base64url')
  const actual = await derive(password, Buffer.from(match[1]!, 'base64url'))
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, PARAMS, (err, key) => (err ? reject(err) : resolve(key)))
  })
}
