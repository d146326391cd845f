import { z } from 'zod'
import { OciError, isOciErrorCode, type OciErrorCode } from '../errors.ts'
import { readBody, type RegistryResponse } from './response.ts'

const errorBodySchema = z.object({
  errors: z
    .array(
      z.looseObject({
        code: z.string(),
        message: z.string().optional(),
        detail: z.unknown().optional(),
      }),
    )
    .min(1),
})

/** Codes for statuses a body did not explain, per operation where the status alone is vague. */
export interface StatusCodes {
  400?: OciErrorCode
  404?: OciErrorCode
}

const BY_STATUS: Record<number, OciErrorCode> = {
  400: 'UNKNOWN',
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'NAME_UNKNOWN',
  405: 'UNSUPPORTED',
  413: 'SIZE_INVALID',
  416: 'RANGE_INVALID',
  429: 'TOOMANYREQUESTS',
}

/**
 * Turns a non-2xx response into an `OciError`. The code is the registry's own when its body is
 * the spec's `{"errors":[{"code","message","detail"}]}` with a known code (distribution-spec
 * "Error Codes"); otherwise one chosen by status. The status is always the response's.
 */
export async function errorFromResponse(
  res: RegistryResponse,
  what: string,
  codes: StatusCodes = {},
): Promise<OciError> {
  let body: Buffer
  try {
    body = await readBody(res, 64 * 1024, 'error body')
  } catch {
    body = Buffer.alloc(0)
  }
  const entries = parseErrorBody(body)
  const first = entries?.[0]
  const status = res.status
  const code: OciErrorCode =
    first && isOciErrorCode(first.code)
      ? first.code
      : ((codes as Record<number, OciErrorCode>)[status] ??
        BY_STATUS[status] ??
        (status >= 502 ? 'UNAVAILABLE' : 'UNKNOWN'))
  const said = first
    ? `${first.code}: ${first.message ?? ''}`.trim()
    : body.toString('utf8', 0, 200).trim()
  const message = `${what}: ${status}${said ? ` ${said}` : ''}`
  return new OciError(code, message, { status, detail: entries ? { errors: entries } : undefined })
}

function parseErrorBody(body: Buffer): z.infer<typeof errorBodySchema>['errors'] | undefined {
  if (body.length === 0) return undefined
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(body.toString('utf8')))
    return parsed.success ? parsed.data.errors : undefined
  } catch {
    return undefined
  }
}

/** Returns when `res.status` is one of `ok`; otherwise throws the registry's error. */
export async function expectStatus(
  res: RegistryResponse,
  ok: readonly number[],
  what: string,
  codes?: StatusCodes,
): Promise<void> {
  if (!ok.includes(res.status)) throw await errorFromResponse(res, what, codes)
}
