import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isThawError } from '../../runtime/errors.ts'
import { answer, header } from '../local/http-answers.ts'
import {
  acceptBody,
  checkDeclaredLength,
  closeAfterAnswerIfUnread,
  isAnswerCut,
  meterBody,
  refuseBody,
  relayAnswer,
  type MeteredBody,
  type RequestBodyLimits,
} from '../request-body/index.ts'
import { authorize, type KeySet, type RouteEntry } from '../router/index.ts'
import type { DispatchInput, DispatchOutput } from '../worker/index.ts'
import { applyCors, type CorsOptions } from './cors.ts'
import type { Routing } from './routing.ts'

/**
 * A running copy of the app, held for one request: a generation of `thaw start`, a slot on one
 * of a host's nodes. release() exactly once.
 */
export interface DoorSlot {
  /** The routing of the copy this slot runs on (it may be newer than the one checked before). */
  readonly routing: Routing
  dispatch(input: DispatchInput): Promise<DispatchOutput>
  /** Headers of this answer beyond the function's (the host's cold-start breakdown). */
  answerHeaders?(timing: {
    sent: number
    arrived: number
    invocationId: string
  }): Record<string, string> | undefined
  /** Learns (and logs) why the copy failed under a request, for the 502's text. */
  failed?(err: unknown, invocationId: string): Promise<string | undefined>
  /** Told of each invocation the slot served, once its answer went out (or failed). */
  answered?(invocation: {
    invocationId: string
    functionName: string
    status: number
    durationMs: number
  }): void
  release(): void
}

/** The seams: where the app's routing, keys and running copies come from. */
export interface DoorApp {
  /** Routing known before a slot is taken; undefined until a copy of the app ran (a new image). */
  routing(): Routing | undefined
  /** Keys to enforce; undefined skips them, as func start does without --enableAuth. */
  readonly keys: KeySet | undefined
  readonly cors: CorsOptions | undefined
  readonly bodyLimits: RequestBodyLimits
  /** The root page at `/` when no function has that route (else 204). */
  readonly homepage: boolean
  /** A request with no answer head in this long is answered 504; none when undefined. */
  readonly requestTimeoutMs: number | undefined
  /** Where the app answers, for 404 hints: `http://localhost:7071`, `http://hello.localhost:7071`. */
  origin(req: IncomingMessage): string
  /**
   * A slot on a running copy (`functionName` when routing came first: the workload a cold start
   * records); rejects with APP_BUSY (429) or why the app cannot run (503; an error with
   * `retryAfterMs` while starts back off).
   */
  acquire(signal: AbortSignal, invocationId: string, functionName?: string): Promise<DoorSlot>
  log(
    level: 'debug' | 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ): void
}

type Routed = { entry: RouteEntry; params: Record<string, string | null> }

/** Bytes of a body read before a slot is taken (or all of it, if shorter). */
const BODY_AHEAD_BYTES = 16 * 1024

/**
 * One function request, the same for `thaw start` and the host, as a chain of small steps in the
 * order Azure's host applies them: CORS (a preflight is answered here) → route (404 with a hint,
 * the root page, 405 with Allow) → disabled function (404, but for the master key) → keys (401)
 * → the declared body length (413) → the body's first 16 KiB (408 for a body too slow, 413 past
 * the limit; nginx's client_body_buffer_size: a trickling client never holds a slot) → acquire a
 * slot (429 with Retry-After when the app's queue is full, 503 when it cannot run, 504 past the
 * request timeout) → route again if the slot's copy routes differently (the first request of a
 * new image is routed here) → dispatch, the body metered → relay the answer with host.json's
 * customHeaders under the body's deadline (a client that does not take it is cut) → release.
 * Returns the status answered (499: the client went away).
 */
export async function serveRequest(
  app: DoorApp,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  arrived = performance.now(),
): Promise<number> {
  if (app.cors && applyCors(app.cors, req, res)) return 204
  const url = new URL(path, 'http://app')
  let checked = app.routing()
  let routed: Routed | number | undefined
  if (checked) {
    routed = check(app, checked, req, res, url)
    if (typeof routed === 'number') return routed
  }
  const limits = app.bodyLimits
  const tooLarge = checkDeclaredLength(req, limits)
  if (tooLarge) return refuseBody(res, tooLarge)
  acceptBody(req, res)
  const body = req.method !== 'GET' && req.method !== 'HEAD' ? meterBody(req, limits) : null
  if (body) {
    const ahead = await body.readAhead(BODY_AHEAD_BYTES).then(
      () => undefined,
      () => (body.refusal ? refuseBody(res, body.refusal) : 499),
    )
    if (ahead !== undefined) return ahead
  }
  // One controller for the client going away and the request timeout (AbortSignal.any and
  // AbortSignal.timeout cost a timer and a listener set per request; this is one of each).
  const abort = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new Error('the client went away'))
  }
  res.once('close', onClose)
  let timedOut = false
  const timer =
    app.requestTimeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true
          abort.abort(new Error('the request timed out'))
        }, app.requestTimeoutMs)
  try {
    const invocationId = randomUUID()
    let slot: DoorSlot
    try {
      const known = typeof routed === 'object' ? routed.entry.fn.name : undefined
      slot = await app.acquire(abort.signal, invocationId, known)
    } catch (err) {
      if (body) closeAfterAnswerIfUnread(req, res)
      body?.destroy()
      return acquireFailed(app, err, timedOut, req, res, url, invocationId)
    }
    try {
      if (slot.routing !== checked) {
        checked = slot.routing
        routed = check(app, checked, req, res, url)
        if (typeof routed === 'number') return routed
      }
      const o = { invocationId, arrived, signal: abort.signal, timedOut: () => timedOut }
      const functionName = (routed as Routed).entry.fn.name
      const status = await dispatch(app, slot, routed as Routed, path, req, res, body, o)
      const durationMs = performance.now() - arrived
      slot.answered?.({ invocationId, functionName, status, durationMs })
      return status
    } finally {
      slot.release()
    }
  } finally {
    clearTimeout(timer)
    res.off('close', onClose)
  }
}

/** Routing, disabled functions and keys; a number is the status already answered. */
function check(
  app: DoorApp,
  routing: Routing,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Routed | number {
  const method = req.method ?? 'GET'
  const m = routing.routes.match(method, url.pathname)
  if (m.kind === 'not-found') {
    if (url.pathname === '/' && (method === 'GET' || method === 'HEAD')) return homepage(app, res)
    answer(res, 404, `no function answers ${method} ${app.origin(req)}${url.pathname}`)
    return 404
  }
  if (m.kind === 'method-not-allowed') {
    res.setHeader('allow', m.allowed.join(', '))
    return (answer(res, 405), 405)
  }
  const { fn } = m.entry
  const disabled = routing.disabled.has(fn.name.toLowerCase())
  // The common case costs no key lookup: an anonymous function that is on.
  if (!disabled && (fn.authLevel === 'anonymous' || !app.keys))
    return { entry: m.entry, params: m.params }
  const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
  const auth = app.keys ? authorize(fn.authLevel, keyed, app.keys, fn.name) : undefined
  // A disabled function still runs for the master key (DOCS disable-function.md).
  if (disabled && !(auth?.ok && auth.level === 'admin')) return (answer(res, 404), 404)
  if (auth && !auth.ok) return (answer(res, 401), 401)
  return { entry: m.entry, params: m.params }
}

function homepage(app: DoorApp, res: ServerResponse): number {
  if (!app.homepage) return (answer(res, 204), 204)
  const html =
    '<!doctype html><title>Your Functions app is up and running</title>' +
    '<h1>Your Functions app is up and running</h1><p>Served by thaw.</p>'
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  })
  res.end(html)
  return 200
}

/**
 * The answer when no slot came: 429 (queue full), 504 (timed out), else 503. A 503 names the
 * invocation (`x-ms-invocation-id`) and, while starts back off, says when to retry
 * (`Retry-After`). Why the app could not run is internal (paths, the app's stack): it goes to the
 * log and to callers with the master key (or to everyone where keys are not enforced: `thaw
 * start` without --enableAuth, the developer's own machine), to nobody else.
 */
function acquireFailed(
  app: DoorApp,
  err: unknown,
  timedOut: boolean,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  invocationId: string,
): number {
  if (isThawError(err, 'APP_BUSY')) {
    res.setHeader('retry-after', '1')
    answer(res, 429, 'too many requests are waiting for this app; retry later')
    return 429
  }
  if (timedOut) {
    answer(res, 504, `no copy of the app was free within ${app.requestTimeoutMs} ms`)
    return 504
  }
  if (res.destroyed) return 499 // the client left while it waited
  const why = err instanceof Error ? err.message : String(err)
  const fields = { invocationId, code: isThawError(err) ? err.code : undefined }
  // A refusal during the backoff repeats a failure logged already: not one more line per request.
  const level = isThawError(err, 'APP_START_BACKOFF') ? 'debug' : 'warn'
  app.log(level, `request answered 503: ${why}`, fields)
  const after = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs
  const retry = typeof after === 'number' ? Math.max(1, Math.ceil(after / 1000)) : undefined
  if (retry !== undefined) res.setHeader('retry-after', String(retry))
  res.setHeader('x-ms-invocation-id', invocationId)
  const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
  const trusted = !app.keys || authorize('admin', keyed, app.keys).ok
  const when = retry === undefined ? '' : `; retry in ${retry} s`
  answer(res, 503, trusted ? why : `the app could not start${when} (invocation ${invocationId})`)
  return 503
}

async function dispatch(
  app: DoorApp,
  slot: DoorSlot,
  routed: Routed,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  body: MeteredBody | null,
  o: { invocationId: string; arrived: number; signal: AbortSignal; timedOut: () => boolean },
): Promise<number> {
  const sent = performance.now()
  // A body refused after the answer started: only closing the connection cuts the upload.
  body?.once('error', () => {
    if (body.refusal && res.headersSent) refuseBody(res, body.refusal)
  })
  let out: DispatchOutput
  try {
    out = await slot.dispatch({
      functionName: routed.entry.fn.name,
      params: routed.params,
      invocationId: o.invocationId,
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      body,
      signal: o.signal,
    })
  } catch (err) {
    if (body?.refusal) return refuseBody(res, body.refusal)
    if (res.headersSent) return (res.destroy(), 502)
    if (body) closeAfterAnswerIfUnread(req, res)
    if (o.timedOut()) {
      answer(res, 504, `the function did not answer within ${app.requestTimeoutMs} ms`)
      return 504
    }
    if (res.destroyed) return 499
    const why = await slot.failed?.(err, o.invocationId)
    if (res.destroyed) return 499
    res.setHeader('x-ms-invocation-id', o.invocationId)
    answer(res, 502, `the app failed while serving this request${why ? ` (${why})` : ''}`)
    return 502
  }
  // Refused while the answer head was on its way: the refusal is the answer.
  if (body?.refusal) {
    out.body.destroy()
    return refuseBody(res, body.refusal)
  }
  const extra = slot.answerHeaders?.({ sent, arrived: o.arrived, invocationId: o.invocationId })
  if (body) closeAfterAnswerIfUnread(req, res)
  res.writeHead(out.status, { ...out.headers, ...slot.routing.customHeaders, ...extra })
  // The answer goes out under the body's deadline: a client that does not take it loses it and
  // the slot is free again (request-body/answer-relay.ts).
  await relayAnswer(out.body, res, app.bodyLimits).catch(async (err: unknown) => {
    res.destroy()
    if (isAnswerCut(err)) {
      // The client's side: it went away (or a refused body cut it), or took the answer too slowly.
      if (err.code === 'ANSWER_TIMEOUT') {
        app.log('info', `answer cut: ${err.message}`, { invocationId: o.invocationId })
      }
    } else if (!body?.refusal) await slot.failed?.(err, o.invocationId)
  })
  return out.status
}
