import type { IncomingMessage, ServerResponse } from 'node:http'
import type { App } from '../apps/app-spec.ts'
import { corsFromSettings } from '../front-door/cors.ts'
import { serveRequest, type DoorApp, type DoorSlot } from '../front-door/request-pipeline.ts'
import { createRouting, type Routing } from '../front-door/routing.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AppNodes, NodeSlot, StartedNode } from '../pool/app-nodes.ts'
import { COLD_START_HEADER, formatColdStart, type ColdStart } from '../pool/cold-start.ts'
import { parseBodyLimits } from '../request-body/index.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import type { RecentColdStarts } from '../pool/recent-cold-starts.ts'
import type { DispatchInput, DispatchOutput } from '../worker/index.ts'
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

/**
 * A function request on the host: the request pipeline shared with `thaw start`
 * (front-door/request-pipeline.ts) over the app's nodes. What is the host's own: routing is
 * known once a node of the app's image was ready (the first request of a new image is routed
 * after its cold start), keys are the master key and the app's host keys, CORS comes from the
 * app's settings (WEBSITE_CORS_ALLOWED_ORIGINS), a node's first answer carries the cold start's
 * breakdown, a node that fails under a request is logged with why, and every answer is counted
 * in the metrics.
 */
export async function serveFunction(
  ctx: FunctionDoorContext,
  app: App,
  nodes: AppNodes,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  origin: string,
): Promise<void> {
  const arrived = performance.now()
  const status = await serveRequest(doorOf(ctx, app, nodes, origin), req, res, path, arrived)
  ctx.metrics.requests.inc({ app: app.name, status: String(status) })
  ctx.metrics.requestDuration.observe({ app: app.name }, (performance.now() - arrived) / 1000)
}

/** One door per app revision, its nodes and the origin it is addressed at: built once, not per request. */
const doors = new WeakMap<AppNodes, Map<string, DoorApp>>()

function doorOf(ctx: FunctionDoorContext, app: App, nodes: AppNodes, origin: string): DoorApp {
  let byOrigin = doors.get(nodes)
  if (!byOrigin) doors.set(nodes, (byOrigin = new Map()))
  let door = byOrigin.get(origin)
  if (door && (door as HostDoor).app === app) return door
  door = createDoor(ctx, app, nodes, origin)
  if (byOrigin.size > 64) byOrigin.clear() // Host headers are the client's: bound what they make
  byOrigin.set(origin, door)
  return door
}

type HostDoor = DoorApp & { readonly app: App }

function createDoor(ctx: FunctionDoorContext, app: App, nodes: AppNodes, origin: string): HostDoor {
  const routings = new WeakMap<StartedNode['functions'], Routing>()
  const routingOf = (r: Pick<StartedNode, 'functions' | 'routePrefix' | 'customHeaders'>) => {
    let routing = routings.get(r.functions)
    if (!routing) {
      const input = { ...r, settings: app.settings }
      routings.set(r.functions, (routing = createRouting(input)))
    }
    return routing
  }
  return {
    app,
    routing: () => (nodes.routes ? routingOf(nodes.routes) : undefined),
    keys: { master: ctx.masterKey, host: app.keys },
    cors: corsFromSettings(app.settings),
    bodyLimits: parseBodyLimits(app.settings, app.limits).limits,
    homepage: app.settings.AzureWebJobsDisableHomepage?.toLowerCase() !== 'true',
    requestTimeoutMs: app.limits.requestTimeoutMs,
    origin: () => origin,
    log: (level, message, f) => ctx.logger.log(level, message, { app: app.name, ...f }),
    async acquire(signal, invocationId, functionName): Promise<DoorSlot> {
      const slot = await nodes.acquire(signal, invocationId, functionName)
      return new HostSlot(ctx, app, slot, routingOf(slot.started))
    },
  }
}

/** A request's slot on one of the app's nodes (a class: no closures made per request). */
class HostSlot implements DoorSlot {
  readonly answerHeaders: DoorSlot['answerHeaders']

  constructor(
    private readonly ctx: FunctionDoorContext,
    private readonly app: App,
    private readonly slot: NodeSlot,
    readonly routing: Routing,
  ) {
    if (slot.first) this.answerHeaders = (t) => firstAnswer(ctx, app, slot, t)
  }

  dispatch(input: DispatchInput): Promise<DispatchOutput> {
    return this.slot.started.client.dispatch(input)
  }

  failed(err: unknown, invocationId: string): Promise<string | undefined> {
    const fields = { app: this.app.name, node: this.slot.node.id, invocationId }
    return nodeFailed(this.ctx, this.slot, err, fields)
  }

  answered(a: { invocationId: string; functionName: string; status: number; durationMs: number }) {
    this.ctx.logs.invocations.add({
      id: a.invocationId,
      app: this.app.name,
      function: a.functionName,
      trigger: 'http',
      status: a.status,
      durationMs: a.durationMs,
      cold: this.slot.first,
      node: this.slot.node.id,
      revision: this.app.revision,
    })
  }

  release(): void {
    this.slot.release()
  }
}

/** A cold start's breakdown: in the header, the metrics, the dashboard and the log. */
function coldStart(
  ctx: FunctionDoorContext,
  app: App,
  slot: NodeSlot,
  t: { sent: number; arrived: number; invocationId: string },
): Record<string, string> {
  const now = performance.now()
  const cold: ColdStart = {
    ...slot.started.timings,
    first: now - t.sent,
    total: now - t.arrived,
    ...slot.started.fetched(),
  }
  ctx.metrics.coldStart(app.name, cold)
  const who = { invocationId: t.invocationId, app: app.name, image: app.image, node: slot.node.id }
  ctx.coldStarts?.add({ ...who, ...cold })
  ctx.logger.log('info', 'cold start', { app: app.name, node: slot.node.id, ...cold })
  return { [COLD_START_HEADER]: formatColdStart(cold) }
}

/**
 * A node's first answer: record/replay stops here; if the request waited for the node's start
 * (not a node a rollout started ahead), its answer carries the cold start's breakdown.
 */
function firstAnswer(
  ctx: FunctionDoorContext,
  app: App,
  slot: NodeSlot,
  t: { sent: number; arrived: number; invocationId: string },
): Record<string, string> | undefined {
  const headers = slot.cold ? coldStart(ctx, app, slot, t) : undefined
  slot.started.firstResponse()
  return headers
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
  slot: NodeSlot,
  err: unknown,
  fields: Record<string, unknown>,
): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>(
    (r) => (timer = setTimeout(() => r(undefined), NODE_EXIT_WAIT_MS)),
  )
  const exit = await Promise.race([slot.started.exited, late])
  clearTimeout(timer)
  if (exit) {
    ctx.logger.log('warn', `request died with its node (${exit.message})`, {
      ...fields,
      reason: exit.reason,
    })
    return `node ${exit.message}`
  }
  ctx.logger.log('warn', `request failed on its node: ${(err as Error).message}`, fields)
  return undefined
}
