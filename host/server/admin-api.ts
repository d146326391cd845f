import type { IncomingMessage, ServerResponse } from 'node:http'
import { ThawError } from '../../runtime/errors.ts'
import { inputChange, parseAppInput, parseAppPatch, patchChange } from '../apps/app-spec.ts'
import type { AppStore } from '../apps/app-store.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { Pool } from '../pool/pool.ts'
import type { ProfileTracker } from '../pool/profile-tracker.ts'
import { authorize } from '../router/index.ts'
import { header } from '../local/http-answers.ts'
import { revisionRoute } from './admin-revisions.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import { serveLogs } from '../logs/log-stream.ts'
import { runFunction, takeFunction } from './function-invoke.ts'
import { readJson, sendError, sendJson } from './json-io.ts'
import type { Rollout } from './rollout.ts'

export interface AdminContext {
  apps: AppStore
  pool: Pool
  profiles: ProfileTracker
  mounts: ImageMounts
  rollout: Rollout
  masterKey: string
  logs: AppLogs
  startedAt: Date
}

/**
 * `/admin/...`, master key only (`x-functions-key` or `?code=`, as Azure's admin API):
 *
 *   GET    /admin/status                 host status (apps, pool summary, uptime)
 *   GET    /admin/apps                   every app
 *   POST   /admin/apps                   create ({name,image,settings?,keys?,limits?}); 409 if it exists
 *   GET    /admin/apps/<name>            one app, with its nodes
 *   PUT    /admin/apps/<name>            create (201) or change (200) the fields given; the others carry over
 *   PATCH  /admin/apps/<name>            change image, settings, keys or limits
 *   ...    /admin/apps/<name>/revisions, /rollback, /settings, /keys: admin-revisions.ts
 *   DELETE /admin/apps/<name>            remove (its nodes drain); 204
 *   POST   /admin/apps/<name>/drain      recycle the app's nodes now (scale to zero); a node still
 *                                        starting drains once ready, and the answer waits for it
 *   GET    /admin/apps/<name>/logs       the app's log (?since=5m|ISO|seq:N, ?follow=1: SSE or NDJSON;
 *                                        host/logs/log-stream.ts)
 *   POST   /admin/apps/<name>/functions/<fn>  run any function ({"input": …}), 202 with its
 *                                        invocation id; also `POST /admin/functions/<fn>` on
 *                                        the app's host name, as Azure's admin API
 *   GET    /admin/invocations            the host's recent invocations, newest first (?app=, ?limit=)
 *   GET    /admin/pool                   warm pool and every app's nodes
 *   GET    /admin/profiles               each image's record/replay profile state
 *   POST   /admin/cache/clear            drop the mounts' cached frames (a cold start from the edge)
 *
 * Every change of an app is a new revision (apps/revision.ts), health-gated by the rollout
 * (server/rollout.ts) as every change of admin-revisions.ts is: when it runs differently (image,
 * settings, limits), PUT and PATCH answer once a node of it has loaded its functions, and a
 * revision that cannot start answers 422 REVISION_FAILED with the node's `logs` while the active
 * one keeps serving. Creating an app (POST, or PUT of a new name) is not gated: it switches at
 * once and its first node starts at the first request (a start that fails backs off, 503); the
 * deploy route (POST /admin/apps/<name>/revisions, `thaw deploy`) gates a new app too.
 * Errors: `{ "error": { "code", "message" } }`; bad bodies are 400 APP_INVALID naming each field.
 */
export async function handleAdmin(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  try {
    const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
    if (!authorize('admin', keyed, { master: ctx.masterKey }).ok) {
      throw new ThawError(
        'UNAUTHORIZED',
        'the admin API needs the master key (x-functions-key or ?code=)',
        { fault: 'user' },
      )
    }
    await route(ctx, req, res, url)
  } catch (err) {
    sendError(res, err)
  }
}

async function route(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const path = url.pathname.replace(/\/+$/, '')
  const method = req.method ?? 'GET'
  const parts = path.split('/').slice(2).map(decodeURIComponent) // ['', 'admin', ...]
  const [what, name, action] = parts
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) {
      res.setHeader('allow', methods.join(', '))
      throw new ThawError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`, {
        fault: 'user',
      })
    }
  }
  if (what === 'status' && parts.length === 1) {
    allow('GET')
    return sendJson(res, 200, status(ctx))
  }
  if (what === 'pool' && parts.length === 1) {
    allow('GET')
    return sendJson(res, 200, ctx.pool.status())
  }
  if (what === 'profiles' && parts.length === 1) {
    allow('GET')
    return sendJson(res, 200, { profiles: ctx.profiles.states() })
  }
  if (what === 'cache' && name === 'clear' && parts.length === 2) {
    allow('POST')
    await ctx.mounts.clearCache()
    return sendJson(res, 200, { cleared: true })
  }
  if (what === 'apps' && parts.length === 1) {
    allow('GET', 'POST')
    if (method === 'GET') return sendJson(res, 200, { apps: ctx.apps.list() })
    const input = parseAppInput(await readJson(req))
    if (ctx.apps.get(input.name)) {
      throw new ThawError(
        'APP_EXISTS',
        `app "${input.name}" exists; PUT or PATCH /admin/apps/${input.name} to change it`,
        { fault: 'user' },
      )
    }
    return sendJson(res, 201, (await ctx.apps.put(input)).app)
  }
  if (what === 'invocations' && parts.length === 1) {
    allow('GET')
    const limit = Number(url.searchParams.get('limit') ?? ctx.logs.invocations.max)
    const app = url.searchParams.get('app') ?? undefined
    return sendJson(res, 200, {
      invocations: ctx.logs.invocations.list({ app, limit: Math.max(0, limit) || undefined }),
    })
  }
  if (what === 'apps' && name !== undefined && parts.length === 2)
    return appRoute(ctx, req, res, name, allow)
  if (what === 'apps' && name !== undefined && action === 'logs' && parts.length === 3) {
    allow('GET')
    if (!ctx.apps.get(name)) notFound(name)
    return serveLogs(ctx.logs, name, req, res, url)
  }
  if (what === 'apps' && name !== undefined && action === 'functions' && parts.length === 4) {
    allow('POST')
    return invoke(ctx, req, res, name, parts[3]!)
  }
  if (what === 'apps' && name !== undefined && action === 'drain' && parts.length === 3) {
    allow('POST')
    const app = ctx.apps.get(name) ?? notFound(name)
    await ctx.pool.nodesOf(app).drainAll()
    return sendJson(res, 200, { drained: name })
  }
  if (what === 'apps' && name !== undefined && parts.length > 2) {
    if (await revisionRoute(ctx, req, res, name, parts.slice(2), allow)) return
  }
  throw new ThawError('NOT_FOUND', `no admin endpoint ${path}`, { fault: 'user' })
}

async function appRoute(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  allow: (...m: string[]) => void,
): Promise<void> {
  allow('GET', 'PUT', 'PATCH', 'DELETE')
  switch (req.method) {
    case 'GET': {
      const app = ctx.apps.get(name) ?? notFound(name)
      const revisions = ctx.apps.record(name)!.revisions.length
      return sendJson(res, 200, { ...app, revisions, nodes: ctx.pool.status().apps[name] ?? null })
    }
    case 'PUT': {
      const body = await readJson(req)
      const input = parseAppInput({ name, ...(body as object) })
      if (input.name !== name) {
        throw new ThawError(
          'APP_INVALID',
          `invalid app: name "${input.name}" does not match the path's "${name}"`,
          { fault: 'user' },
        )
      }
      // A new app is created as POST /admin/apps makes one (see above); a change is gated.
      if (!ctx.apps.get(name)) return sendJson(res, 201, (await ctx.apps.put(input)).app)
      return sendJson(res, 200, (await ctx.rollout.apply(name, inputChange(input, true))).app)
    }
    case 'PATCH': {
      const change = patchChange(parseAppPatch(await readJson(req)))
      return sendJson(res, 200, (await ctx.rollout.apply(name, change)).app)
    }
    default:
      if (!(await ctx.apps.delete(name))) notFound(name)
      res.writeHead(204).end()
  }
}

/**
 * Runs a function of any trigger as Azure's `POST /admin/functions/<name>` does: the body is
 * `{"input": <value>}` (empty: no input; a timer then gets a manual run's TimerInfo), the answer
 * 202 once a node of the app has the function (after a cold start if it had no node), with the
 * invocation id in `x-ms-invocation-id` and the body. The run goes on in the background; its
 * outcome is in the app's log and `GET /admin/invocations`.
 */
async function invoke(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  fn: string,
): Promise<void> {
  const app = ctx.apps.get(name) ?? notFound(name)
  const h = req.headers
  const empty =
    h['content-length'] === '0' ||
    (h['content-length'] === undefined && h['transfer-encoding'] === undefined)
  const body = empty ? {} : await readJson(req) // no body: no input, as on Azure
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ThawError('BODY_INVALID', 'the body must be a JSON object: {"input": <value>}', {
      fault: 'user',
    })
  }
  const taken = await takeFunction(
    ctx,
    app,
    fn,
    AbortSignal.timeout(app.limits.startTimeoutMs + 5000),
  )
  void runFunction(ctx, app, taken, (body as { input?: unknown }).input, 'admin')
  res.setHeader('x-ms-invocation-id', taken.invocationId)
  return sendJson(res, 202, { invocationId: taken.invocationId, function: taken.fn.name })
}

function notFound(name: string): never {
  throw new ThawError('APP_NOT_FOUND', `no app named "${name}"`, { fault: 'user' })
}

function status(ctx: AdminContext) {
  const pool = ctx.pool.status()
  const nodes = Object.values(pool.apps).flatMap((a) => a.nodes)
  return {
    startedAt: ctx.startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
    apps: ctx.apps.list().length,
    warm: pool.warm,
    nodes: {
      total: nodes.length,
      ready: nodes.filter((n) => n.state === 'ready').length,
      inflight: nodes.reduce((n, x) => n + x.inflight, 0),
    },
  }
}
