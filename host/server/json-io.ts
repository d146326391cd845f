import type { IncomingMessage, ServerResponse } from 'node:http'
import { isThawError, ThawError } from '../../runtime/errors.ts'

/** `{ "error": { "code", "message" } }` with the status the error's code and fault call for. */
export function sendError(res: ServerResponse, err: unknown): void {
  const status = errorStatus(err)
  const code = isThawError(err) ? err.code : 'INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  // Errors may carry fields for the caller (REVISION_FAILED: the revision and its node's log lines).
  const detail = (err as { detail?: Record<string, unknown> } | undefined)?.detail
  sendJson(res, status, { error: { code, message, ...detail } })
}

const STATUS: Record<string, number> = {
  APP_NOT_FOUND: 404,
  FUNCTION_NOT_FOUND: 404,
  APP_BUSY: 429,
  APP_START_FAILED: 503,
  NOT_FOUND: 404,
  APP_EXISTS: 409,
  REVISION_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  REVISION_CONFLICT: 409,
  REVISION_FAILED: 422,
  UNAUTHORIZED: 401,
  METHOD_NOT_ALLOWED: 405,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
}

function errorStatus(err: unknown): number {
  if (!isThawError(err)) return 500
  return STATUS[err.code] ?? (err.fault === 'user' ? 400 : 500)
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(`${JSON.stringify(body, null, 2)}\n`)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length })
  res.end(bytes)
}

/** The request body as JSON, at most `limit` bytes; BODY_INVALID (400) when it is not JSON. */
export async function readJson(req: IncomingMessage, limit = 1024 * 1024): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? 'application/json')
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ThawError('UNSUPPORTED_MEDIA_TYPE', `expected application/json, got ${type}`, { fault: 'user' })
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new ThawError('BODY_TOO_LARGE', `body larger than ${limit} bytes`, { fault: 'user' })
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new ThawError('BODY_INVALID', `body is not JSON: ${(err as Error).message}`, { fault: 'user' })
  }
}
