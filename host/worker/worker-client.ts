import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { Pool } from 'undici'
import { encodeRouteParams, WorkerHeaders } from '../../runtime/protocol/worker-contract.ts'
import {
  invokeFailureSchema,
  invokeResultSchema,
} from '../../runtime/protocol/worker-message-schemas.ts'
import type { InvokeResult } from '../../runtime/protocol/worker-messages.ts'

/** One HTTP invocation to forward: the client's request plus what routing found. */
export interface DispatchInput {
  functionName: string
  params: Record<string, string | null>
  invocationId: string
  method: string
  /** Path and query as the client sent them (the worker rebuilds the URL from it and Host). */
  path: string
  headers: IncomingHttpHeaders
  /** The request body as a stream; null for none. */
  body: Readable | null
  signal?: AbortSignal
}

export interface DispatchOutput {
  status: number
  headers: Record<string, string | string[]>
  body: Readable
}

/** A function failed, or the worker refused the call; `status` is the worker's answer. */
export class WorkerCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The function's error stack, when the worker sent one. */
    readonly functionStack?: string,
  ) {
    super(message)
    this.name = 'WorkerCallError'
  }
}

export interface WorkerClient {
  dispatch(input: DispatchInput): Promise<DispatchOutput>
  invoke(
    functionName: string,
    input: unknown,
    invocationId: string,
    signal?: AbortSignal,
  ): Promise<InvokeResult>
  /** Waits for requests in flight, then closes the connections. Idempotent. */
  close(): Promise<void>
  /** Closes at once, failing what is in flight. */
  destroy(): Promise<void>
}

/**
 * Headers that belong to one connection (RFC 9110 §7.6.1) are not forwarded; undici also refuses
 * some of them. `expect: 100-continue` is answered by the front door, not forwarded.
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
])

/**
 * HTTP/1.1 client for a worker's THAW_LISTEN address (a unix socket path or host:port), with
 * keep-alive connections: the warm path is one request on an open socket.
 */
export function createWorkerClient(listen: string): WorkerClient {
  const pool = listen.includes('/')
    ? new Pool('http://localhost', {
        socketPath: listen,
        connections: 256,
        keepAliveTimeout: 30_000,
      })
    : new Pool(`http://${listen}`, { connections: 256, keepAliveTimeout: 30_000 })
  let closing: Promise<void> | undefined

  return {
    async dispatch(input) {
      const headers: Record<string, string | string[]> = {}
      for (const k in input.headers) {
        const v = input.headers[k]
        if (v !== undefined && !NOT_FORWARDED.has(k) && !k.startsWith('x-thaw-')) headers[k] = v
      }
      headers[WorkerHeaders.function] = input.functionName
      headers[WorkerHeaders.routeParams] = encodeRouteParams(input.params)
      headers[WorkerHeaders.invocationId] = input.invocationId
      const res = await pool.request({
        method: input.method,
        path: input.path,
        headers,
        body: input.body,
        signal: input.signal,
      })
      const out: Record<string, string | string[]> = {}
      for (const k in res.headers) {
        const v = res.headers[k]
        if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v
      }
      return { status: res.statusCode, headers: out, body: res.body }
    },

    async invoke(functionName, input, invocationId, signal) {
      const res = await pool.request({
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/json',
          [WorkerHeaders.function]: functionName,
          [WorkerHeaders.invocationId]: invocationId,
        },
        body: JSON.stringify({ input }),
        signal,
      })
      const json: unknown = await res.body.json().catch(() => undefined)
      if (res.statusCode === 200) return invokeResultSchema.parse(json)
      const failure = invokeFailureSchema.safeParse(json)
      throw new WorkerCallError(
        res.statusCode,
        failure.success ? failure.data.error.message : `the worker answered ${res.statusCode}`,
        failure.success ? failure.data.error.stack : undefined,
      )
    },

    close: () => (closing ??= pool.close()),
    destroy: () => (closing ??= pool.destroy()),
  }
}
