import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import type { AnswerSink, AnswerSource } from '../request-body/answer-relay.ts'
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
  /** Relayed by request-body's relayAnswer (readAnswer reads it whole); destroy() if unused. */
  body: AnswerSource
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
    dispatch(input) {
      const headers: Record<string, string | string[]> = {}
      for (const k in input.headers) {
        const v = input.headers[k]
        if (v !== undefined && !NOT_FORWARDED.has(k) && !k.startsWith('x-thaw-')) headers[k] = v
      }
      headers[WorkerHeaders.function] = input.functionName
      headers[WorkerHeaders.routeParams] = encodeRouteParams(input.params)
      headers[WorkerHeaders.invocationId] = input.invocationId
      return new Promise<DispatchOutput>((resolve, reject) => {
        const answer = new DispatchedAnswer(resolve, reject, input.body, input.signal)
        pool.dispatch({ method: input.method, path: input.path, headers, body: input.body }, answer)
      })
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

/** Answer bytes held before the relay starts: past this the connection to the node is paused. */
const HOLD_BYTES = 64 * 1024

/**
 * One HTTP invocation through undici's dispatch, handled here rather than by `pool.request`: the
 * promise resolves at the answer's head, and the answer's body is an AnswerSource fed straight
 * from undici's parser, so no Readable, listener set or extra tick stands between the node's
 * bytes and the client's response (the warm path's cost). Chunks that come before the relay
 * starts (those of the head's own read, usually the whole answer) are held, at most HOLD_BYTES
 * before the connection is paused. As `pool.request` does: an abort of `signal` aborts the
 * exchange, and a failed exchange destroys the request body.
 */
class DispatchedAnswer implements Dispatcher.DispatchHandler, AnswerSource {
  #controller: Dispatcher.DispatchController | undefined
  #aborted: Error | undefined
  #removeAbort: (() => void) | undefined
  #answered = false
  #sink: AnswerSink | undefined
  #held: Buffer[] = []
  #heldBytes = 0
  /** The end or error, when it came before the relay started. */
  #outcome: { error?: Error } | undefined
  /** Nothing more goes to the sink: the answer ended, failed, or was destroyed. */
  #done = false
  #paused = false

  constructor(
    private readonly resolve: (out: DispatchOutput) => void,
    private readonly reject: (err: Error) => void,
    private readonly requestBody: Readable | null,
    signal: AbortSignal | undefined,
  ) {
    if (signal?.aborted) this.#aborted = abortReason(signal)
    else if (signal) {
      const onAbort = () => this.#abort(abortReason(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      this.#removeAbort = () => signal.removeEventListener('abort', onAbort)
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#aborted) controller.abort(this.#aborted)
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return // 1xx: informational, the answer is still to come
    const out: Record<string, string | string[]> = {}
    for (const k in headers) {
      const v = headers[k]
      if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v
    }
    this.#answered = true
    this.resolve({ status: statusCode, headers: out, body: this })
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#done) return
    if (this.#sink) return this.#sink.data(chunk)
    this.#held.push(chunk)
    this.#heldBytes += chunk.length
    if (this.#heldBytes > HOLD_BYTES) controller.pause()
  }

  onResponseEnd(): void {
    this.#removeAbort?.()
    if (this.#done) return
    if (!this.#sink) return void (this.#outcome = {})
    this.#done = true
    this.#sink.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#removeAbort?.()
    if (this.requestBody && !this.requestBody.destroyed) {
      this.requestBody.on('error', () => {})
      this.requestBody.destroy(err)
    }
    if (!this.#answered) return this.reject(err)
    if (this.#done) return
    if (!this.#sink) return void (this.#outcome = { error: err })
    this.#done = true
    this.#sink.error(err)
  }

  start(sink: AnswerSink): void {
    if (this.#sink || this.#done) return
    this.#sink = sink
    const held = this.#held
    this.#held = []
    for (const chunk of held) if (!this.#done) sink.data(chunk)
    if (this.#done) return
    if (this.#outcome) {
      this.#done = true
      if (this.#outcome.error) sink.error(this.#outcome.error)
      else sink.end()
    } else if (this.#heldBytes > HOLD_BYTES && !this.#paused) this.#controller?.resume()
  }

  pause(): void {
    this.#paused = true
    this.#controller?.pause()
  }

  resume(): void {
    this.#paused = false
    this.#controller?.resume()
  }

  destroy(): void {
    if (this.#done) return
    this.#done = true
    this.#held = []
    if (!this.#outcome) this.#abort(new Error('the answer was not taken'))
  }

  #abort(reason: Error) {
    this.#aborted ??= reason
    this.#controller?.abort(reason)
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new Error('the request was aborted')
}
