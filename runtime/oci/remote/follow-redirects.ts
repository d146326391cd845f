import type { Dispatcher } from 'undici'
import { ThawError } from '../../errors.ts'
import type { RegistryResponse } from './response.ts'
import { discardBody } from './response.ts'
import type { Method, TransportRequest } from './transport.ts'

/** What the transport sends requests with. */
export interface Wire {
  dispatcher: Dispatcher
  /** Relative request URLs resolve against this. */
  base: URL
  userAgent: string
  headersTimeout: number
  bodyTimeout: number
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 10

/**
 * Sends a request and follows redirects by hand (undici's own are off), e.g. a blob GET sent
 * on to object storage. Every hop keeps the request's headers (Range included) except
 * Authorization, which is dropped for good once a hop leaves the origin: distribution-spec
 * (main, PR #607) says clients MUST NOT forward it across hosts, and storage URLs carry their
 * own signature.
 */
export async function followRedirects(
  wire: Wire,
  req: TransportRequest,
  authorization: string | undefined,
): Promise<RegistryResponse> {
  let url = new URL(req.url, wire.base)
  let method = req.method
  let body = req.body
  // Credentials live apart from the other headers, so that dropping them is one assignment.
  const { authorization: given, ...others } = req.headers ?? {}
  let auth = authorization ?? given
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': wire.userAgent, ...others }
    if (auth) headers.authorization = auth
    const raw = await wire.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers,
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : await body(),
      signal: req.signal,
      headersTimeout: wire.headersTimeout,
      bodyTimeout: wire.bodyTimeout,
    })
    const res = toResponse(raw, url)
    const location = res.header('location')
    if (!REDIRECTS.has(res.status) || !location || !canFollow(res.status, method)) return res
    await discardBody(res)
    if (hop >= MAX_REDIRECTS) {
      const message = `${req.method} ${req.url}: more than ${MAX_REDIRECTS} redirects`
      throw new ThawError('REGISTRY_REDIRECT_LOOP', message)
    }
    const next = new URL(location, url)
    if (next.origin !== url.origin) auth = undefined
    if (res.status === 303 && method !== 'HEAD') {
      method = 'GET'
      body = undefined
    }
    url = next
  }
}

/**
 * GET and HEAD follow every redirect; 303 turns anything into a GET. Other methods follow only
 * 307 and 308, which repeat the request as it was (bodies here are always replayable).
 */
function canFollow(status: number, method: Method): boolean {
  return method === 'GET' || method === 'HEAD' || status === 303 || status === 307 || status === 308
}

function toResponse(raw: Dispatcher.ResponseData, url: URL): RegistryResponse {
  return {
    status: raw.statusCode,
    url,
    body: raw.body,
    header(name) {
      const value = raw.headers[name.toLowerCase()]
      return Array.isArray(value) ? value.join(', ') : value
    },
  }
}
