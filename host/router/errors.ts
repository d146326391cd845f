import { ThawError } from '../../runtime/errors.ts'

/** Stable codes of route and key problems; all are the app author's to fix (fault: user). */
export type RouterErrorCode = 'ROUTE_INVALID' | 'ROUTE_CONFLICT' | 'ROUTE_RESERVED' | 'KEYS_INVALID'

export class RouterError extends ThawError {
  declare readonly code: RouterErrorCode

  constructor(code: RouterErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { fault: 'user', cause: options.cause })
    this.name = 'RouterError'
  }
}
