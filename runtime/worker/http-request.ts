import type { IncomingMessage } from 'node:http'
import type { ProgrammingModel, RpcHttpData, RpcNullableString } from './core-types.ts'

/**
 * Headers that describe one connection, not the request (RFC 9110 §7.6.1), plus the worker
 * protocol's own: the function never sees them, whichever way the request came.
 */
const HIDDEN_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'x-ms-invocation-id',
])

export function isHiddenHeader(name: string): boolean {
  return HIDDEN_HEADERS.has(name) || name.startsWith('x-thaw-')
}

/**
 * The request headers as the function sees them: names lower-cased, repeated headers joined
 * with "," (HOST GrpcMessageConversionExtensions.ToRpcHttp: lower-cased keys, StringValues joined).
 */
export function functionHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (isHiddenHeader(name)) continue
    const value = raw[i + 1]!
    out[name] = name in out ? `${out[name]},${value}` : value
  }
  return out
}

/** `{scheme}://{host}{path}{query}`, with X-Forwarded-Proto/-Host when a proxy set them. */
export function requestUrl(req: IncomingMessage): string {
  const proto = first(req.headers['x-forwarded-proto']) ?? 'http'
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host ?? 'localhost'
  return `${proto}://${host}${req.url ?? '/'}`
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  return v ? v.split(',')[0]!.trim() : undefined
}

function nullable(record: Record<string, string | null>): Record<string, RpcNullableString> {
  const out: Record<string, RpcNullableString> = {}
  for (const [k, v] of Object.entries(record)) out[k] = { value: v }
  return out
}

/**
 * RpcHttpData for buffered mode, in the shape the host sends with the worker's capabilities
 * (UseNullableValueDictionaryForHttp, RawHttpBodyBytes): nullable headers and params, and the body
 * as bytes. Optional route parameters that did not match are null, which the library turns into "".
 *
 * One deliberate difference: no nullableQuery. Azure's host joins repeated keys ("a=1&a=2" →
 * "1,2"); without it the library reads the query from the URL (HttpRequest.ts), so getAll() works
 * and buffered mode answers like streaming mode, which always reads the URL (nodejs-library#168).
 */
export function toRpcHttpRequest(
  req: IncomingMessage,
  headers: Record<string, string>,
  params: Record<string, string | null>,
  body: Buffer | LazyRequestBody,
): RpcHttpData & { nativeRequest?: Request } {
  const url = requestUrl(req)
  const http: RpcHttpData & { nativeRequest?: Request } = {
    method: req.method ?? 'GET',
    url,
    nullableHeaders: nullable(headers),
    nullableParams: nullable(params),
  }
  if (Buffer.isBuffer(body)) {
    if (body.length > 0) http.body = { bytes: body }
  } else {
    // GET and HEAD never carry a body to the function (the library drops it too).
    const stream = req.method === 'GET' || req.method === 'HEAD' ? null : body.stream
    http.nativeRequest = new Request(url, {
      method: http.method!,
      headers,
      body: stream,
      ...(stream ? { duplex: 'half' } : {}),
    } as RequestInit)
  }
  return http
}

/** A body the function reads from the connection itself (lazy-body.ts). */
export interface LazyRequestBody {
  stream: ReadableStream<Uint8Array> | null
}

/**
 * Whether the app's library builds its HttpRequest from a ready `Request` passed in the
 * RpcHttpData as `nativeRequest` (LIB src/http/HttpRequest.ts, 4.11.0 and later; the field its
 * own streaming mode fills). Then the body can stay on the connection until the function reads
 * it; older versions (4.2–4.10 name the field `undiciRequest` and want their own undici's class)
 * get the body buffered, as Azure's host sends it.
 */
export function takesNativeRequest(model: ProgrammingModel | undefined): boolean {
  if (model?.name !== '@azure/functions') return false
  const [major = 0, minor = 0] = model.version.split('.').map((n) => Number.parseInt(n, 10))
  return major > 4 || (major === 4 && minor >= 11)
}
