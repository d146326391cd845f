import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { decodeRouteParams, WorkerHeaders } from '../protocol/worker-contract.ts'
import type { WorkerMessage } from '../protocol/worker-messages.ts'
import { findFunction } from './app-state.ts'
import { isHttpTrigger } from './function-info.ts'
import { BodyTooLargeError } from './read-body.ts'
import type { Invocation, ServeContext } from './serve-context.ts'
import { serveBuffered } from './serve-buffered.ts'
import { BadInvokeBodyError, serveNonHttp } from './serve-non-http.ts'
import { serveStreamed } from './serve-streamed.ts'

export interface InvocationHandler {
  (req: IncomingMessage, res: ServerResponse): void
  /** Invocations running now. */
  readonly inFlight: () => number
  /** Resolves when none is running (or at `deadline`, epoch ms). */
  drained(deadline: number): Promise<void>
}

/**
 * Which invocation events go to the host (WorkerEnv.invocationEvents): every start and end, or
 * only the end of a failed invocation.
 */
export type InvocationEvents = 'all' | 'failed'

/**
 * The worker's HTTP entry (THAW_LISTEN): resolves `x-thaw-function`, runs the invocation in the
 * function's mode, and reports invocation-start/-end on the control channel (with `events`
 * `failed`, only the end of a failed one). A handler error is a 500 with an empty body (the
 * host's answer to an unhandled exception), never a dead worker.
 */
export function createInvocationHandler(
  ctx: ServeContext,
  send: (m: WorkerMessage) => void,
  events: InvocationEvents = 'all',
): InvocationHandler {
  let inFlight = 0
  let waiters: (() => void)[] = []
  const done = () => {
    if (--inFlight === 0) for (const w of waiters.splice(0)) w()
  }

  const handler = ((req, res) => {
    const inv = resolveInvocation(ctx, req, res)
    if (!inv) return
    inFlight++
    void invoke(ctx, inv, send, events === 'all').finally(done)
  }) as InvocationHandler
  Object.defineProperty(handler, 'inFlight', { value: () => inFlight })
  handler.drained = (deadline) =>
    new Promise<void>((resolve) => {
      if (inFlight === 0) return resolve()
      waiters.push(resolve)
      setTimeout(
        () => {
          waiters = waiters.filter((w) => w !== resolve)
          resolve()
        },
        Math.max(0, deadline - Date.now()),
      ).unref()
    })
  return handler
}

function resolveInvocation(
  ctx: ServeContext,
  req: IncomingMessage,
  res: ServerResponse,
): Invocation | undefined {
  const name = req.headers[WorkerHeaders.function]
  if (typeof name !== 'string' || name === '') {
    reject(res, 400, `missing ${WorkerHeaders.function} header`)
    return undefined
  }
  const fn = findFunction(ctx.state, name)
  if (!fn) {
    reject(res, 404, `function "${name}" is not registered`)
    return undefined
  }
  let params: Record<string, string | null>
  try {
    params = decodeRouteParams(header(req, WorkerHeaders.routeParams))
  } catch (err) {
    reject(res, 400, (err as Error).message)
    return undefined
  }
  const traceParent = header(req, 'traceparent')
  return {
    req,
    res,
    fn,
    invocationId: header(req, WorkerHeaders.invocationId) || randomUUID(),
    params,
    traceContext: traceParent
      ? { traceParent, traceState: header(req, 'tracestate') ?? '', attributes: {} }
      : undefined,
  }
}

async function invoke(
  ctx: ServeContext,
  inv: Invocation,
  send: (m: WorkerMessage) => void,
  everyEvent: boolean,
) {
  const functionName = inv.fn.metadata.name
  const { invocationId, res } = inv
  if (everyEvent) send({ type: 'invocation-start', invocationId, functionName })
  const start = performance.now()
  try {
    if (!isHttpTrigger(inv.fn)) await serveNonHttp(ctx, inv)
    else if (ctx.streamUri) await serveStreamed(ctx, inv)
    else await serveBuffered(ctx, inv)
    const durationMs = performance.now() - start
    if (everyEvent) {
      send({ type: 'invocation-end', invocationId, functionName, outcome: 'succeeded', durationMs })
    }
  } catch (err) {
    const durationMs = performance.now() - start
    const error = err instanceof Error ? err : new Error(String(err))
    send({
      type: 'invocation-end',
      invocationId,
      functionName,
      outcome: 'failed',
      durationMs,
      error: { message: error.message, stack: error.stack },
    })
    if (res.headersSent) res.destroy()
    else if (err instanceof BodyTooLargeError) reject(res, 413, '', true)
    else if (err instanceof BadInvokeBodyError) reject(res, 400, err.message)
    else if (!isHttpTrigger(inv.fn)) reject(res, 500, error.message, false, error.stack)
    else {
      res.writeHead(500, { 'content-length': '0' })
      res.end()
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** A protocol-level refusal: JSON `{"error":{"message"}}` (InvokeFailure), or empty for 413. */
function reject(
  res: ServerResponse,
  status: number,
  message: string,
  close = false,
  stack?: string,
): void {
  const body = message
    ? Buffer.from(JSON.stringify({ error: { message, stack } }))
    : Buffer.alloc(0)
  const headers: Record<string, string | number> = { 'content-length': body.length }
  if (body.length) headers['content-type'] = 'application/json'
  if (close) headers.connection = 'close'
  res.writeHead(status, headers)
  res.end(body)
}
