import type { IncomingMessage, ServerResponse } from 'node:http'
import { ThawError } from '../../runtime/errors.ts'
import { parseAppInput, parseAppPatch } from '../apps/app-spec.ts'
import type { AppStore } from '../apps/app-store.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { Pool } from '../pool/pool.ts'
import type { ProfileTracker } from '../pool/profile-tracker.ts'
import { authorize } from '../router/index.ts'
import { header } from '../local/http-answers.ts'
import { revisionRoute } from './admin-revisions.ts'
import { readJson, sendError, sendJson } from './json-io.ts'
import type { Rollout } from './rollout.ts'

export interface AdminContext {
  apps: AppStore
  pool: Pool
  profiles: ProfileTracker
  mounts: ImageMounts
  rollout: Rollout
  masterKey: string
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
 *   POST   /admin/apps/<name>/drain      recycle the app's nodes now (scale to zero)
 *   GET    /admin/pool                   warm pool and every app's nodes
 *   GET    /admin/profiles               each image's record/replay profile state
 *   POST   /admin/cache/clear            drop the mounts' cached frames (a cold start from the edge)
 *
 * Every change of an app is a new revision (apps/revision.ts); POST, PUT and PATCH here switch to it
 * at once (its nodes start at the next request), the routes of admin-revisions.ts gate it first.
 * Errors: `{ "error": { "code", "message" } }`; bad bodies are 400 APP_INVALID naming each field.
 */
export async function handleAdmin(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  try {
    const keyed = { headers: { get: (h: string) => header(req, h) ?? null }, url }
    if (!authorize('admin', keyed, { master: ctx.masterKey }).ok) {
      throw new ThawError('UNAUTHORIZED', 'the admin API needs the master key (x-functions-key or ?code=)', { fault: 'user' })
    }
    await route(ctx, req, res, url.pathname.replace(/\/+$/, ''))
  } catch (err) {
    sendError(res, err)
  }
}

async function route(ctx: AdminContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET'
  const parts = path.split('/').slice(2).map(decodeURIComponent) // ['', 'admin', ...]
  const [what, name, action] = parts
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) {
      res.setHeader('allow', methods.join(', '))
      throw new ThawError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`, { fault: 'user' })
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
      throw new ThawError('APP_EXISTS', `app "${input.name}" exists; PUT or PATCH /admin/apps/${input.name} to change it`, { fault: 'user' })
    }
    return sendJson(res, 201, (await ctx.apps.put(input)).app)
  }
  if (what === 'apps' && name !== undefined && parts.length === 2) return appRoute(ctx, req, res, name, allow)
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
        throw new ThawError('APP_INVALID', `invalid app: name "${input.name}" does not match the path's "${name}"`, { fault: 'user' })
      }
      const { app, created } = await ctx.apps.put(input)
      return sendJson(res, created ? 201 : 200, app)
    }
    case 'PATCH':
      return sendJson(res, 200, await ctx.apps.update(name, parseAppPatch(await readJson(req))))
    default:
      if (!(await ctx.apps.delete(name))) notFound(name)
      res.writeHead(204).end()
  }
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
