/**
 * The base of every error thaw throws on purpose.
 *
 * `code` is stable and is what callers match on (never `instanceof`, never the message).
 * `fault` says who has to act: `user` means bad input or configuration, `system` means thaw or
 * something it depends on failed. Servers map `user` to 4xx and `system` to 5xx.
 */
export type Fault = 'user' | 'system'

export class ThawError extends Error {
  readonly code: string
  readonly fault: Fault

  constructor(code: string, message: string, options: { fault?: Fault; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ThawError'
    this.code = code
    this.fault = options.fault ?? 'system'
  }
}

export function isThawError(err: unknown, code?: string): err is ThawError {
  return (
    err instanceof Error &&
    typeof (err as ThawError).code === 'string' &&
    ((err as ThawError).fault === 'user' || (err as ThawError).fault === 'system') &&
    (code === undefined || (err as ThawError).code === code)
  )
}

/** A one-line description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}
