import { ThawError, type Fault } from '../errors.ts'

/**
 * Error codes of the OCI Distribution Spec v1.1 ("Error Codes", code-1 … code-14), with the HTTP
 * status a registry answers them with. Registries are allowed to choose other statuses for some
 * codes; these follow what CNCF distribution does, so clients behave the same against both.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
export const OCI_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  // Not in the spec's table but used by registries (distribution: errcode.ErrorCodeUnavailable,
  // ErrorCodeUnknown, v2.ErrorCodeRangeInvalid, v2.ErrorCodeTagInvalid).
  UNAVAILABLE: 503,
  UNKNOWN: 500,
  RANGE_INVALID: 416,
  TAG_INVALID: 400,
} as const

export type OciErrorCode = keyof typeof OCI_ERROR_STATUS

export interface OciErrorBody {
  errors: { code: string; message: string; detail?: unknown }[]
}

/** An error in the spec's shape. `status` defaults to the code's usual status. */
export class OciError extends ThawError {
  declare readonly code: OciErrorCode
  readonly status: number
  readonly detail: unknown

  constructor(
    code: OciErrorCode,
    message: string,
    options: { status?: number; detail?: unknown; cause?: unknown } = {},
  ) {
    const status = options.status ?? OCI_ERROR_STATUS[code]
    const fault: Fault = status >= 500 ? 'system' : 'user'
    super(code, message, { fault, cause: options.cause })
    this.name = 'OciError'
    this.status = status
    this.detail = options.detail
  }

  /** True when trying again later may succeed (rate limited, or the registry failed). */
  get temporary(): boolean {
    return this.status === 429 || this.status >= 500
  }

  /** The spec's error body: `{"errors":[{"code","message","detail"}]}`. */
  toBody(): OciErrorBody {
    const entry: OciErrorBody['errors'][number] = { code: this.code, message: this.message }
    if (this.detail !== undefined) entry.detail = this.detail
    return { errors: [entry] }
  }
}

export function isOciErrorCode(value: string): value is OciErrorCode {
  return Object.hasOwn(OCI_ERROR_STATUS, value)
}

export function isOciError(err: unknown, code?: OciErrorCode): err is OciError {
  return (
    err instanceof Error &&
    err.name === 'OciError' &&
    (code === undefined || (err as OciError).code === code)
  )
}
