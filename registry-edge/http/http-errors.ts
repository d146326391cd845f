import { ThawError, isThawError } from '../../runtime/errors.ts'
import { isOciError, type OciErrorBody } from '../../runtime/oci/index.ts'

/**
 * A 416. By default with distribution's RANGE_INVALID code: the spec's error table has no code
 * for it, and distribution registers this one for both a bad Range on blob GET and an
 * out-of-order chunk. A chunk's Content-Range that is not the spec's `<start>-<end>` at all is
 * the spec's BLOB_UPLOAD_INVALID, still with 416. `headers` carries `Content-Range: bytes *\/size`
 * or the upload's `Range`/`Location`.
 */
export type RangeInvalidCode = 'RANGE_INVALID' | 'BLOB_UPLOAD_INVALID'

export class RangeInvalidError extends ThawError {
  declare readonly code: RangeInvalidCode
  readonly status = 416
  readonly headers: Record<string, string>

  constructor(
    message: string,
    headers: Record<string, string> = {},
    code: RangeInvalidCode = 'RANGE_INVALID',
  ) {
    super(code, message, { fault: 'user' })
    this.name = 'RangeInvalidError'
    this.headers = headers
  }

  toBody(): OciErrorBody {
    return { errors: [{ code: this.code, message: this.message }] }
  }
}

/** An error the edge renders as it is: a status, a spec body and maybe headers. */
interface RenderableError {
  status: number
  toBody(): OciErrorBody
  headers?: Record<string, string>
}

function isRenderable(err: unknown): err is RenderableError {
  return (
    err instanceof Error &&
    typeof (err as Partial<RenderableError>).status === 'number' &&
    typeof (err as Partial<RenderableError>).toBody === 'function'
  )
}

/**
 * The spec's error response (`{"errors":[{code,message,detail}]}`, distribution-spec "Error
 * Codes") for any thrown value. OciErrors and other renderable errors keep their status; other
 * user faults become 400 UNSUPPORTED; anything else is a 500 whose message is not leaked.
 */
export function errorResponse(err: unknown, extraHeaders: Record<string, string> = {}): Response {
  let status = 500
  let body: OciErrorBody = { errors: [{ code: 'UNKNOWN', message: 'internal error' }] }
  let headers: Record<string, string> = {}
  if (isOciError(err) || isRenderable(err)) {
    status = err.status
    body = err.toBody()
    headers = (err as RenderableError).headers ?? {}
  } else if (isThawError(err) && err.fault === 'user') {
    status = 400
    body = { errors: [{ code: 'UNSUPPORTED', message: err.message }] }
  }
  return jsonResponse(body, status, { ...headers, ...extraHeaders })
}

export function jsonResponse(
  value: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  const text = JSON.stringify(value)
  return new Response(text, {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    },
  })
}

/** True for errors that are the client's doing (logged quietly) rather than the edge's. */
export function isClientError(err: unknown): boolean {
  if (isOciError(err) || isRenderable(err)) return (err as RenderableError).status < 500
  return isThawError(err) && err.fault === 'user'
}
