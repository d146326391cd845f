import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isThawError } from '../../runtime/errors.ts'
import type { App } from '../apps/app-spec.ts'
import { answer, header } from '../local/http-answers.ts'
import type { HostLogger } from '../log/host-logger.ts'
import { AppStartError, type AppNodes, type NodeSlot } from '../pool/app-nodes.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import { COLD_START_HEADER, formatColdStart, type ColdStart } from '../pool/cold-start.ts'
import {
  acceptBody,
  checkDeclaredLength,
  closeAfterAnswerIfUnread,
  isAnswerCut,
  meterBody,
  parseBodyLimits,
  refuseBody,
  relayAnswer,
  type MeteredBody,
  type RequestBodyLimits,
} from '../request-body/index.ts'
import { authorize, createRouteTable, type RouteEntry, type RouteTable } from '../router/index.ts'
import type { RecentColdStarts } from '../pool/recent-cold-starts.ts'
import type { HostMetrics } from './host-metrics.ts'

export interface FunctionDoorContext {
  masterKey: string
  metrics: HostMetrics
  logger: HostLogger
  /** Each cold start's figures, for the dashboard. */
  coldStarts?: RecentColdStarts
  /** Each answered invocation goes to its recent invocations. */
  logs: AppLogs
}

type Routed = { entry: RouteEntry; params: Record<string, string | null> }

/**
 * One function request, as a chain of small steps: route (when the app's routes are known) →
 * body limit → the body's first 16 KiB (all of a shorter one) → acquire a slot on a ready node
 * (waiting, or a cold start) → route (first request of a new image) → keys → dispatch, the
 * body metered → relay the answer under the body's deadline → release. Answers: 404/405/401 as
 * Azure's host; 413 for a declared Content-Length over the app's limit (before any node is
 * acquired) or a body that grows past it; 408 for a body that comes too slowly (before a slot is
 * taken, when its first 16 KiB do); 429 with Retry-After when the app's queue is full; 503 when
 * the app cannot start; 504 when the function has no answer head within the app's request
 * timeout; 502 (with the invocation id) when the node fails under the request. An answer the
 * client does not take in time is cut.
 */
export async function serveFunction(
  ctx: FunctionDoorContext,
  app: App,
  nodes: AppNodes,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const arrived = performance.now()
  const done = (status: number) => {
    ctx.metrics.requests.inc({ app: app.name, status: String(status) })
    ctx.metrics.requestDuration.observe({ app: app.name }, (performance.now() - arrived) / 1000)
  }
  const url = new URL(path, `http://${req.headers.host ?? 'localhost'}`)
  const closed = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) closed.abort(new Error('the client went away'))
  })
  const timeout = AbortSignal.timeout(app.limits.requestTimeoutMs)
  const signal = AbortSignal.any([closed.signal, timeout])
  let routed: Routed | undefined
  if (nodes.routes) {
    const r = check(ctx, app, tableOf(nodes.routes), req, url, res)
    if (typeof r === 'number') return done(r)
    routed = r
  }
  const limits = bodyLimitsOf(app)
  const tooLarge = checkDeclaredLength(req, limits)
  if (tooLarge) return done(refuseBody(res, tooLarge))
  acceptBody(req, res)
  const body: MeteredBody | null = hasBody(req) ? meterBody(req, limits) : null
  // The start of the body comes before a node slot is taken (nginx's client_body_buffer_size):
  // a client trickling it meets its deadline without holding a slot.
  const ahead = await body?.readAhead(BODY_AHEAD_BYTES).then(
    () => undefined,
    () => (body.refusal ? refuseBody(res, body.refusal) : 499),
  )
  if (ahead !== undefined) return done(ahead)
  const invocationId = randomUUID()
  let slot: NodeSlot
  try {
    slot = await nodes.acquire(signal, invocationId, routed?.entry.fn.name)
  } catch (err) {
    if (body) closeAfterAnswerIfUnread(req, res)
    body?.destroy()
    return done(acquireFailed(ctx, app, err, timeout.aborted, req, res, invocationId))
  }
  try {
    if (!routed) {
      const r = check(ctx, app, tableOf(slot.started), req, url, res)
      if (typeof r === 'number') return done(r)
      routed = r
    }
    const o = { invocationId, limits, arrived, signal, timedOut: () => timeout.aborted }
    const status = await dispatch(ctx, app, slot, routed, path, req, res, body, o)
    done(status)
    ctx.logs.invocations.add({
      id: invocationId,
      app: app.name,
      function: routed.entry.fn.name,
      trigger: 'http',
      status,
      durationMs: performance.now() - arrived,
      cold: slot.first,
      node: slot.node.id,
      revision: app.revision,
    })
  } finally {
    slot.release()
  }
}

/** Bytes of a body read before a slot is taken (or all of it, if shorter). */
const BODY_AHEAD_BYTES = 16 * 1024

function hasBody(req: IncomingMessage): boolean {
  return req.method !== 'GET' && req.method !== 'HEAD'
}

const bodyLimits = new WeakMap<App, RequestBodyLimits>()
/** The app's body limits from its settings (validated by the admin API), per app revision. */
function bodyLimitsOf(app: App): RequestBodyLimits {
  let limits = bodyLimits.get(app)
  if (!limits) bodyLimits.set(app, (limits = parseBodyLimits(app.settings, app.limits).limits))
  return limits
}

const tables = new WeakMap<object, RouteTable>()
function tableOf(routes: { functions: RouteEntry['fn'][]; routePrefix: string }): RouteTable {
  let t = tables.get(routes)
  if (!t) tables.set(routes, (t = createRouteTable(routes.functions, { routePrefix: routes.routePrefix })))
  return t
}

/** Routing and keys; a number is the status already answered. */
function check(ctx: FunctionDoorContext, app: App, table: RouteTable, req: IncomingMessage, url: URL, res: ServerResponse): Routed | number {
  const m = table.match(req.method ?? 'GET', url.pathname)
  if (m.kind === 'not-found') return answer(res, 404), 404
  if (m.kind === 'method-not-allowed') {
    res.setHeader('allow', m.allowed.join(', '))
    return answer(res, 405), 405
  }
  const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
  const auth = authorize(m.entry.fn.authLevel, keyed, { master: ctx.masterKey, host: app.keys }, m.entry.fn.name)
  if (!auth.ok) return answer(res, 401), 401
  return { entry: m.entry, params: m.params }
}

/**
 * The answer when no slot came: 429 (queue full), 504 (timed out), else 503. A 503 names the
 * invocation (`x-ms-invocation-id`) and, when starts fail, says when to retry (`Retry-After`,
 * the backoff). Why it failed is internal (paths, the app's stack): it goes to the host's log
 * and to callers with the master key, to nobody else.
 */
function acquireFailed(
  ctx: FunctionDoorContext,
  app: App,
  err: unknown,
  timedOut: boolean,
  req: IncomingMessage,
  res: ServerResponse,
  invocationId: string,
): number {
  if (isThawError(err, 'APP_BUSY')) {
    res.setHeader('retry-after', '1')
    answer(res, 429, 'too many requests are waiting for this app; retry later')
    return 429
  }
  if (timedOut) return answer(res, 504, 'no node of the app was free within the request timeout'), 504
  if (res.destroyed) return 499 // the client left while it waited
  const why = err instanceof Error ? err.message : String(err)
  const fields = { app: app.name, invocationId, code: isThawError(err) ? err.code : undefined }
  // A refusal during the backoff repeats a failure logged already: not one more error line per request.
  ctx.logger.log(isThawError(err, 'APP_START_BACKOFF') ? 'debug' : 'warn', `request answered 503: ${why}`, fields)
  const retry = err instanceof AppStartError ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : undefined
  if (retry !== undefined) res.setHeader('retry-after', String(retry))
  res.setHeader('x-ms-invocation-id', invocationId)
  const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url: new URL(req.url ?? '/', 'http://host') }
  const master = authorize('admin', keyed, { master: ctx.masterKey }).ok
  const when = retry === undefined ? '' : `; retry in ${retry} s`
  answer(res, 503, master ? why : `the app could not start${when} (invocation ${invocationId})`)
  return 503
}

async function dispatch(
  ctx: FunctionDoorContext,
  app: App,
  slot: NodeSlot,
  routed: Routed,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  body: MeteredBody | null,
  o: {
    invocationId: string
    limits: RequestBodyLimits
    arrived: number
    signal: AbortSignal
    timedOut: () => boolean
  },
): Promise<number> {
  const sent = performance.now()
  // A body refused after the answer started: only closing the connection cuts the upload.
  body?.once('error', () => {
    if (body.refusal && res.headersSent) refuseBody(res, body.refusal)
  })
  let out
  try {
    out = await slot.started.client.dispatch({
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
    if (res.headersSent) return res.destroy(), 502
    if (body) closeAfterAnswerIfUnread(req, res)
    if (o.timedOut()) return answer(res, 504, `the function did not answer within ${app.limits.requestTimeoutMs} ms`), 504
    if (res.destroyed) return 499
    const exit = await nodeFailed(ctx, app, slot, o.invocationId, err)
    if (res.destroyed) return 499
    res.setHeader('x-ms-invocation-id', o.invocationId)
    const why = exit ? ` (node ${exit.message})` : ''
    answer(res, 502, `the node running the app failed while serving this request${why}`)
    return 502
  }
  // Refused while the node's answer head was on its way: the refusal is the answer.
  if (body?.refusal) {
    out.body.destroy()
    return refuseBody(res, body.refusal)
  }
  const headers = { ...out.headers }
  if (slot.cold) {
    const now = performance.now()
    const cold: ColdStart = {
      ...slot.started.timings,
      first: now - sent,
      total: now - o.arrived,
      ...slot.started.fetched(),
    }
    headers[COLD_START_HEADER] = formatColdStart(cold)
    ctx.metrics.coldStart(app.name, cold)
    const who = { invocationId: o.invocationId, app: app.name, image: app.image, node: slot.node.id }
    ctx.coldStarts?.add({ ...who, ...cold })
    ctx.logger.log('info', 'cold start', { app: app.name, node: slot.node.id, ...cold })
  }
  if (slot.first) slot.started.firstResponse()
  if (body) closeAfterAnswerIfUnread(req, res)
  res.writeHead(out.status, headers)
  // The answer goes out under the body's deadline: a client that does not take it loses it and
  // the slot is free again (request-body/answer-relay.ts).
  await relayAnswer(out.body, res, o.limits).catch(async (err: unknown) => {
    res.destroy()
    if (isAnswerCut(err)) {
      // The client's side: it went away (or a refused body cut it), or took the answer too slowly.
      if (err.code === 'ANSWER_TIMEOUT') {
        const fields = { app: app.name, node: slot.node.id, invocationId: o.invocationId }
        ctx.logger.log('info', `answer cut: ${err.message}`, fields)
      }
    } else if (!body?.refusal) await nodeFailed(ctx, app, slot, o.invocationId, err)
  })
  return out.status
}

/** How long a request that failed on its node waits to learn whether, and why, the node died. */
const NODE_EXIT_WAIT_MS = 3000

/**
 * Logs a request its node failed under, with why when the node died: the connection to a
 * killed node breaks as the process goes, and its exit (OOM killer, signal, status) is known
 * moments later. The slot is held meanwhile, so the node's own exit line lists this invocation.
 */
async function nodeFailed(
  ctx: FunctionDoorContext,
  app: App,
  slot: NodeSlot,
  invocationId: string,
  err: unknown,
): Promise<{ message: string; reason?: string } | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), NODE_EXIT_WAIT_MS)))
  const exit = await Promise.race([slot.started.exited, late])
  clearTimeout(timer)
  const fields = { app: app.name, node: slot.node.id, invocationId, reason: exit?.reason }
  if (exit) ctx.logger.log('warn', `request died with its node (${exit.message})`, fields)
  else ctx.logger.log('warn', `request failed on its node: ${(err as Error).message}`, fields)
  return exit
}
