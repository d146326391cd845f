import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { OciError } from './errors.ts'

/**
 * A content digest, `algorithm:hex`. Only sha256 is accepted (the algorithm every registry
 * supports; OCI image-spec "Digests"). Made only by `parseDigest` or `sha256Of`, so a value of
 * this type is always well formed: safe to use in file paths and URLs.
 */
export type Digest = string & { readonly __brand: 'Digest' }

const SHA256 = /^sha256:[a-f0-9]{64}$/

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && SHA256.test(value)
}

/** Throws `DIGEST_INVALID` (a user fault) for anything but `sha256:<64 lowercase hex>`. */
export function parseDigest(value: unknown): Digest {
  if (isDigest(value)) return value
  throw new OciError(
    'DIGEST_INVALID',
    `invalid digest ${JSON.stringify(String(value).slice(0, 100))}`,
  )
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length)
}

export function sha256Of(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest
}

/** Incremental sha256 with a byte count. */
export class Hasher {
  readonly #hash: Hash = createHash('sha256')
  #final: Digest | undefined
  size = 0

  update(chunk: Uint8Array): void {
    if (this.#final) throw new Error('Hasher.update after digest()')
    this.#hash.update(chunk)
    this.size += chunk.length
  }

  /** Finalizes on the first call; later calls return the same digest. */
  digest(): Digest {
    this.#final ??= `sha256:${this.#hash.digest('hex')}` as Digest
    return this.#final
  }
}

/**
 * A pass-through stream that verifies what flows through it: it fails with `DIGEST_INVALID` or
 * `SIZE_INVALID` at the end (or as soon as the size is exceeded), so a consumer that waits for
 * the stream to finish never accepts unverified bytes.
 */
export class VerifyingStream extends Transform {
  readonly #hasher = new Hasher()
  readonly #expected: { digest?: Digest; size?: number }

  constructor(expected: { digest?: Digest; size?: number }) {
    super()
    this.#expected = expected
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hasher.update(chunk)
    const { size } = this.#expected
    if (size !== undefined && this.#hasher.size > size) {
      done(new OciError('SIZE_INVALID', `content is larger than the expected ${size} bytes`))
      return
    }
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    const { digest, size } = this.#expected
    if (size !== undefined && this.#hasher.size !== size) {
      done(new OciError('SIZE_INVALID', `content is ${this.#hasher.size} bytes, expected ${size}`))
      return
    }
    const actual = this.#hasher.digest()
    if (digest !== undefined && actual !== digest) {
      done(new OciError('DIGEST_INVALID', `content digest ${actual} does not match ${digest}`))
      return
    }
    done()
  }

  /** The digest of everything that passed; valid after the stream ended. */
  get digest(): Digest {
    return this.#hasher.digest()
  }

  get size(): number {
    return this.#hasher.size
  }
}
