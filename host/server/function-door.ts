import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { isThawError } from '../../runtime/errors.ts'
import type { App } from '../apps/app-spec.ts'
import { answer, header } from '../local/http-answers.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AppNodes, NodeSlot } from '../pool/app-nodes.ts'
import { COLD_START_HEADER, formatColdStart, type ColdStartTimings } from '../pool/cold-start.ts'
import { authorize, createRouteTable, type RouteEntry, type RouteTable } from '../router/index.ts'
import type { HostMetrics } from './host-metrics.ts'

export interface FunctionDoorContext {
  masterKey: string
  metrics: HostMetrics
  logger: HostLogger
}

type Routed = { entry: RouteEntry; params: Record<string, string | null> }

/**
 * One function request, as a chain of small steps: route (when the app's routes are known) →
 * acquire a slot on a ready node (waiting, or a cold start) → route (first request of a new
 * image) → keys → dispatch → release. Answers: 404/405/401 as Azure's host; 429 with
 * Retry-After when the app's queue is full; 503 when the app cannot start; 504 when the
 * function has no answer head within the app's request timeout; 502 when the node fails under
 * the request.
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
  let slot: NodeSlot
  try {
    slot = await nodes.acquire(signal)
  } catch (err) {
    return done(acquireFailed(err, timeout.aborted, res))
  }
  try {
    if (!routed) {
      const r = check(ctx, app, tableOf(slot.started), req, url, res)
      if (typeof r === 'number') return done(r)
      routed = r
    }
    const status = await dispatch(ctx, app, slot, routed, path, req, res, { arrived, signal, timedOut: () => timeout.aborted })
    done(status)
  } finally {
    slot.release()
  }
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

function acquireFailed(err: unknown, timedOut: boolean, res: ServerResponse): number {
  if (isThawError(err, 'APP_BUSY')) {
    res.setHeader('retry-after', '1')
    answer(res, 429, 'too many requests are waiting for this app; retry later')
    return 429
  }
  if (timedOut) return answer(res, 504, 'no node of the app was free within the request timeout'), 504
  if (res.destroyed) return 499 // the client left while it waited
  answer(res, 503, isThawError(err) ? err.message : 'the app could not start')
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
  o: { arrived: number; signal: AbortSignal; timedOut: () => boolean },
): Promise<number> {
  const sent = performance.now()
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  let out
  try {
    out = await slot.started.client.dispatch({
      functionName: routed.entry.fn.name,
      params: routed.params,
      invocationId: randomUUID(),
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      body: hasBody ? req : null,
      signal: o.signal,
    })
  } catch (err) {
    if (res.headersSent) return res.destroy(), 502
    if (o.timedOut()) return answer(res, 504, `the function did not answer within ${app.limits.requestTimeoutMs} ms`), 504
    if (res.destroyed) return 499
    ctx.logger.log('warn', `dispatch failed: ${(err as Error).message}`, { app: app.name, node: slot.node.id })
    answer(res, 502, 'the node running the app failed while serving this request')
    return 502
  }
  const headers = { ...out.headers }
  if (slot.first) {
    const now = performance.now()
    const cold: ColdStartTimings = { ...slot.started.timings, first: now - sent, total: now - o.arrived }
    headers[COLD_START_HEADER] = formatColdStart(cold)
    ctx.metrics.coldStart(app.name, cold)
    ctx.logger.log('info', 'cold start', { app: app.name, node: slot.node.id, ...cold })
    slot.started.firstResponse()
  }
  res.writeHead(out.status, headers)
  await pipeline(out.body, res).catch(() => res.destroy())
  return out.status
}
