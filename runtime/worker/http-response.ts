import type { RpcHttpCookie, RpcHttpData, RpcTypedData } from './core-types.ts'

/** An HTTP answer ready to write: status, header pairs (Set-Cookie may repeat), body bytes. */
export interface HttpAnswer {
  status: number
  headers: [string, string][]
  body: Buffer
}

const NULL_BODY_STATUSES = new Set([204, 205, 304])

/**
 * `returnValue.http` (buffered mode) → the HTTP answer. The library sends the status as a string,
 * headers as a record and cookies as RpcHttpCookie; an absent response is 200 with no body, as the
 * host answers (HOST HttpBinding: CreateResult(request, null) → 200).
 */
export function fromRpcHttpResponse(http: RpcHttpData | null | undefined): HttpAnswer {
  if (!http) return { status: 200, headers: [], body: Buffer.alloc(0) }
  const parsed = Number.parseInt(http.statusCode ?? '', 10)
  const status = Number.isFinite(parsed) && parsed >= 100 && parsed <= 999 ? parsed : 200
  const headers: [string, string][] = Object.entries(http.headers ?? {})
  for (const cookie of http.cookies ?? []) headers.push(['set-cookie', serializeCookie(cookie)])
  const body = NULL_BODY_STATUSES.has(status) ? Buffer.alloc(0) : bodyBytes(http.body)
  return { status, headers, body }
}

function bodyBytes(body: RpcTypedData | null | undefined): Buffer {
  if (!body) return Buffer.alloc(0)
  if (body.bytes) return Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.length)
  if (body.stream) return Buffer.from(body.stream)
  if (typeof body.string === 'string') return Buffer.from(body.string)
  if (typeof body.json === 'string') return Buffer.from(body.json)
  return Buffer.alloc(0)
}

/**
 * RpcHttpCookie → a Set-Cookie value (RFC 6265 §4.1), written exactly as the library writes it in
 * streaming mode (it uses the `cookie` package: encoded value, then Max-Age, Domain, Path, Expires,
 * HttpOnly, Secure, SameSite), so both modes answer the same bytes.
 */
export function serializeCookie(cookie: RpcHttpCookie): string {
  let out = `${cookie.name ?? ''}=${encodeURIComponent(cookie.value ?? '')}`
  const maxAge = cookie.maxAge?.value
  if (typeof maxAge === 'number' && Number.isFinite(maxAge))
    out += `; Max-Age=${Math.floor(maxAge)}`
  if (cookie.domain?.value) out += `; Domain=${cookie.domain.value}`
  if (cookie.path?.value) out += `; Path=${cookie.path.value}`
  const seconds = cookie.expires?.value?.seconds
  if (typeof seconds === 'number') out += `; Expires=${new Date(seconds * 1000).toUTCString()}`
  if (cookie.httpOnly?.value) out += '; HttpOnly'
  if (cookie.secure?.value) out += '; Secure'
  if (cookie.sameSite === 'lax') out += '; SameSite=Lax'
  else if (cookie.sameSite === 'strict') out += '; SameSite=Strict'
  else if (cookie.sameSite === 'explicitNone') out += '; SameSite=None'
  return out
}
