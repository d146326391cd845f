import type { IncomingMessage } from 'node:http'
import type { RpcHttpData, RpcNullableString } from './core-types.ts'

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
  body: Buffer,
): RpcHttpData {
  const url = requestUrl(req)
  const http: RpcHttpData = {
    method: req.method ?? 'GET',
    url,
    nullableHeaders: nullable(headers),
    nullableParams: nullable(params),
  }
  if (body.length > 0) http.body = { bytes: body }
  return http
}
