import { Pool } from 'undici'
import { FUNCTIONS_HOST_VERSION } from '../../runtime/protocol/worker-contract.ts'
import type { InvokeResult } from '../../runtime/protocol/worker-messages.ts'
import { CustomHandlerError } from './errors.ts'
import type { FunctionJsonFunction } from './function-json.ts'
import {
  parsePayloadResponse,
  toHttpAnswer,
  toPayloadHttpRequest,
  toPayloadInvoke,
  type HandlerHttpAnswer,
  type HandlerHttpRequest,
  type PayloadRequest,
} from './payload.ts'

/** Headers the host adds to every request to a custom handler (HOST HttpWorkerConstants). */
function invocationHeaders(invocationId: string): Record<string, string> {
  return {
    'x-azure-functions-invocationid': invocationId,
    'x-azure-functions-hostversion': FUNCTIONS_HOST_VERSION,
    'user-agent': `Azure-Functions-Host/${FUNCTIONS_HOST_VERSION}`,
  }
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
])

export interface CustomHandlerClient {
  /** Whether `http` forwards the request as it came (its body may stay a stream). */
  forwards(fn: FunctionJsonFunction): boolean
  /** An HTTP-triggered function: forwarded as is, or wrapped in the payload protocol. */
  http(
    fn: FunctionJsonFunction,
    req: HandlerHttpRequest,
    invocationId: string,
    signal?: AbortSignal,
  ): Promise<{ answer: HandlerHttpAnswer; logs: string[] }>
  /** Any function run by hand with an input (the payload protocol). */
  invoke(
    fn: FunctionJsonFunction,
    input: unknown,
    invocationId: string,
    signal?: AbortSignal,
  ): Promise<InvokeResult & { logs: string[] }>
  /** Waits for calls in flight, then closes the connections. */
  close(): Promise<void>
  /** Closes at once, failing what is in flight. */
  destroy(): Promise<void>
}

/**
 * Talks to a running custom handler at `baseUrl` (http://127.0.0.1:<FUNCTIONS_CUSTOMHANDLER_PORT>).
 * Forwarding (`enableForwardingHttpRequest`) applies only to HTTP-in/HTTP-out functions, and sends
 * the original method, path, query, headers and body, answering the handler's response verbatim
 * (HOST DefaultHttpWorkerService.ProcessHttpInAndOutInvocationRequest). Everything else POSTs the
 * payload to `/<functionName>` and needs a 2xx answer (EnsureSuccessStatusCode).
 */
export function createCustomHandlerClient(options: {
  baseUrl: string
  forwarding: boolean
}): CustomHandlerClient {
  const pool = new Pool(options.baseUrl, { connections: 64 })

  async function postPayload(
    fn: FunctionJsonFunction,
    payload: PayloadRequest,
    id: string,
    signal?: AbortSignal,
  ) {
    const res = await pool.request({
      method: 'POST',
      path: `/${encodeURIComponent(fn.name)}`,
      headers: { 'content-type': 'application/json', ...invocationHeaders(id) },
      body: JSON.stringify(payload),
      signal,
    })
    const text = await res.body.text()
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw new CustomHandlerError(
        'CUSTOM_HANDLER_FAILED',
        `the custom handler answered ${res.statusCode} for function "${fn.name}"${text ? `: ${text.slice(0, 500)}` : ''}`,
      )
    }
    return parsePayloadResponse(text)
  }

  const forwards = (fn: FunctionJsonFunction) => options.forwarding && fn.httpInAndOut
  return {
    forwards,
    async http(fn, req, invocationId, signal) {
      if (forwards(fn)) {
        const headers: Record<string, string> = {}
        for (const [k, v] of req.headers) if (!HOP_BY_HOP.has(k)) headers[k] = v
        Object.assign(headers, invocationHeaders(invocationId))
        const res = await pool.request({
          method: req.method,
          path: `${req.url.pathname}${req.url.search}`,
          headers,
          body: req.method === 'GET' || req.method === 'HEAD' ? null : req.body,
          signal,
        })
        const body = Buffer.from(await res.body.arrayBuffer())
        const out: [string, string][] = []
        for (const [k, v] of Object.entries(res.headers)) {
          if (HOP_BY_HOP.has(k) || v === undefined) continue
          for (const one of Array.isArray(v) ? v : [v]) out.push([k, one])
        }
        return { answer: { status: res.statusCode, headers: out, body }, logs: [] }
      }
      const response = await postPayload(fn, toPayloadHttpRequest(fn, req), invocationId, signal)
      return { answer: toHttpAnswer(fn, response), logs: response.logs }
    },

    async invoke(fn, input, invocationId, signal) {
      const response = await postPayload(fn, toPayloadInvoke(fn, input), invocationId, signal)
      const outputs = { ...response.outputs }
      return { returnValue: response.returnValue, outputs, logs: response.logs }
    },

    close: () => pool.close(),
    destroy: () => pool.destroy(),
  }
}
