import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { CustomHandlerError } from './errors.ts'
import type { FunctionJsonFunction } from './function-json.ts'

/**
 * An HTTP request as the host received it: the body buffered (the payload carries it whole), or
 * a stream when the request is forwarded as it came (dispatch-bridge.ts toHandlerRequest).
 */
export interface HandlerHttpRequest {
  method: string
  /** The original URL, with the route prefix and query. */
  url: URL
  headers: Headers
  body: Buffer | Readable
  params: Record<string, string | null>
}

/** The JSON body POSTed to `/<functionName>` (HOST HttpScriptInvocationContext). */
export interface PayloadRequest {
  Data: Record<string, unknown>
  Metadata: Record<string, unknown>
}

/** The handler's JSON answer (HOST HttpScriptInvocationResult); keys are case-insensitive. */
export interface PayloadResponse {
  outputs: Record<string, unknown>
  logs: string[]
  returnValue: unknown
}

/**
 * The default (payload) protocol request for an HTTP trigger, shaped as the host shapes it
 * (ScriptInvocationContextExtensions.ToHttpScriptInvocationContext, HttpRequestExtensions
 * .GetRequestAsJObject):
 *
 *   Data.<trigger> = { Url, Method, Query: {k: v}, Headers: {k: [v]}, Params: {k: v|null},
 *                      Identities: [], Body? }
 *   Metadata       = { <route param>: "\"v\"", Query: {k: v}, Headers: {k: v}, sys: {…} }
 *
 * Quirks kept on purpose, since handlers written for Azure expect them: Body is present only when
 * the request had a Content-Length above 0; it is a string unless the content type is
 * application/octet-stream or multipart/*, then base64 (Newtonsoft's byte[]); route values in
 * Metadata are JSON-encoded strings (JsonConvert.SerializeObject of a string). Repeated query keys
 * and headers are joined with ",". Header names are lower-case (the host keeps the client's case).
 */
export function toPayloadHttpRequest(
  fn: FunctionJsonFunction,
  req: HandlerHttpRequest,
  now = new Date(),
): PayloadRequest {
  const query = joined(req.url.searchParams)
  const headerLists: Record<string, string[]> = {}
  const headerJoined: Record<string, string> = {}
  for (const [k, v] of req.headers) {
    headerLists[k] = v.split(',').map((s) => s.trim())
    headerJoined[k] = v
  }
  const http: Record<string, unknown> = {
    Url: req.url.href,
    Method: req.method,
    Query: query,
    Headers: headerLists,
    Params: req.params,
    Identities: [],
  }
  if (!Buffer.isBuffer(req.body))
    throw new TypeError('the payload protocol needs the body read whole')
  const length = Number(req.headers.get('content-length') ?? '0')
  if (length > 0 && req.body.length > 0) {
    http.Body = isBinary(req.headers.get('content-type'))
      ? req.body.toString('base64')
      : req.body.toString('utf8')
  }
  const metadata: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(req.params)) if (v !== null) metadata[k] = JSON.stringify(v)
  metadata.Query = query
  metadata.Headers = headerJoined
  metadata.sys = sys(fn, now)
  return { Data: { [fn.triggerName]: http }, Metadata: metadata }
}

/** A non-HTTP trigger run by hand: its input under the trigger's name, sys in Metadata. */
export function toPayloadInvoke(
  fn: FunctionJsonFunction,
  input: unknown,
  now = new Date(),
): PayloadRequest {
  return { Data: { [fn.triggerName]: input ?? null }, Metadata: { sys: sys(fn, now) } }
}

function sys(fn: FunctionJsonFunction, now: Date) {
  return { MethodName: fn.name, UtcNow: now.toISOString(), RandGuid: randomUUID() }
}

function joined(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of params) out[k] = k in out ? `${out[k]},${v}` : v
  return out
}

function isBinary(contentType: string | null): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase()
  return type === 'application/octet-stream' || type.startsWith('multipart/')
}

const responseShape = z.record(z.string(), z.unknown())

/** Parses the handler's answer; Outputs, Logs and ReturnValue are matched case-insensitively (Newtonsoft). */
export function parsePayloadResponse(text: string): PayloadResponse {
  let json: unknown
  try {
    json = text.trim() === '' ? {} : JSON.parse(text)
  } catch (err) {
    throw badResponse(`the custom handler answered invalid JSON: ${(err as Error).message}`)
  }
  const parsed = responseShape.safeParse(json)
  if (!parsed.success) throw badResponse('the custom handler must answer a JSON object')
  const get = (name: string) =>
    Object.entries(parsed.data).find(([k]) => k.toLowerCase() === name)?.[1]
  const outputs = get('outputs') ?? {}
  const logs = get('logs') ?? []
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) {
    throw badResponse('"Outputs" must be an object')
  }
  if (!Array.isArray(logs)) throw badResponse('"Logs" must be an array')
  return {
    outputs: outputs as Record<string, unknown>,
    logs: logs.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))),
    returnValue: get('returnvalue') ?? null,
  }
}

export interface HandlerHttpAnswer {
  status: number
  headers: [string, string][]
  body: Buffer
}

/**
 * The HTTP output (Outputs.<res>, or ReturnValue for `$return`) as a response, following the
 * host's HttpBinding.ParseResponseObject: an object with a `body` key gives status (statusCode
 * wins over status, numbers or strings), headers and body; anything else is the body itself with
 * status 200. Object bodies are JSON; no output at all is 200 with no body.
 */
export function toHttpAnswer(
  fn: FunctionJsonFunction,
  response: PayloadResponse,
): HandlerHttpAnswer {
  const name = fn.httpOutput
  const value =
    name === undefined
      ? undefined
      : name === '$return'
        ? response.returnValue
        : Object.entries(response.outputs).find(
            ([k]) => k.toLowerCase() === name.toLowerCase(),
          )?.[1]
  if (value === undefined || value === null)
    return { status: 200, headers: [], body: Buffer.alloc(0) }
  const fields =
    typeof value === 'object' && !Array.isArray(value)
      ? lower(value as Record<string, unknown>)
      : undefined
  if (!fields || !('body' in fields)) return withBody(200, [], value)
  const status = Number(fields.statuscode ?? fields.status ?? 200)
  const headers: [string, string][] = []
  if (typeof fields.headers === 'object' && fields.headers !== null) {
    for (const [k, v] of Object.entries(fields.headers)) headers.push([k, String(v)])
  }
  return withBody(
    Number.isInteger(status) && status >= 100 && status <= 999 ? status : 200,
    headers,
    fields.body,
  )
}

function withBody(status: number, headers: [string, string][], body: unknown): HandlerHttpAnswer {
  const has = (h: string) => headers.some(([k]) => k.toLowerCase() === h)
  let bytes: Buffer
  if (body === undefined || body === null) bytes = Buffer.alloc(0)
  else if (typeof body === 'string') {
    bytes = Buffer.from(body)
    if (!has('content-type')) headers.push(['content-type', 'text/plain; charset=utf-8'])
  } else {
    bytes = Buffer.from(JSON.stringify(body))
    if (!has('content-type')) headers.push(['content-type', 'application/json; charset=utf-8'])
  }
  return { status, headers, body: bytes }
}

function lower(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v]))
}

function badResponse(message: string): CustomHandlerError {
  return new CustomHandlerError('CUSTOM_HANDLER_BAD_RESPONSE', message)
}
