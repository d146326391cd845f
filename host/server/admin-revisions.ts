import type { IncomingMessage, ServerResponse } from 'node:http'
import { ThawError } from '../../runtime/errors.ts'
import {
  isKeyName,
  parseDeployInput,
  parseKeyInput,
  parseRollbackInput,
  parseSettingsPatch,
} from '../apps/app-spec.ts'
import type { AppStore } from '../apps/app-store.ts'
import type { AppRecord, Revision } from '../apps/revision.ts'
import { generateKey } from '../router/index.ts'
import { readJson, sendJson } from './json-io.ts'
import type { Rollout, RolloutResult } from './rollout.ts'

/** A revision as the admin API shows it: key names, never their values. */
export interface RevisionView extends Omit<Revision, 'keys'> {
  keys: string[]
  active: boolean
}

export function revisionView(r: Revision, record: AppRecord): RevisionView {
  return { ...r, keys: Object.keys(r.keys), active: r.number === record.active }
}

/**
 * An app's revisions, settings and keys (README "Admin API"); every change is a new revision,
 * made by the rollout (health-gated when it changes how the app runs):
 *
 *   GET    /admin/apps/<name>/revisions        { name, active, revisions: [RevisionView] } newest first
 *   POST   /admin/apps/<name>/revisions        deploy: {image?, settings?, unset?, keys?, limits?} merged
 *   GET    /admin/apps/<name>/revisions/<n>    one RevisionView
 *   POST   /admin/apps/<name>/rollback         {revision?}: a new revision with revision n's image,
 *                                              settings and limits (default: the one before the active)
 *   GET    /admin/apps/<name>/settings         { settings }
 *   PATCH  /admin/apps/<name>/settings         {set?, unset?}
 *   GET    /admin/apps/<name>/keys             { keys } (values)
 *   PUT    /admin/apps/<name>/keys/<key>       {value?}: set, or renew with a new random value
 *   DELETE /admin/apps/<name>/keys/<key>       204
 *
 * Changes answer RolloutAnswer (201 when the deploy created the app); a revision that fails its
 * health gate answers 422 REVISION_FAILED with `revision` and the node's `logs`.
 */
export async function revisionRoute(
  ctx: { apps: AppStore; rollout: Rollout },
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  rest: string[],
  allow: (...m: string[]) => void,
): Promise<boolean> {
  const [what, item] = rest
  const record = () => ctx.apps.record(name) ?? notFound(name)
  if (what === 'revisions' && rest.length === 1) {
    allow('GET', 'POST')
    if (req.method === 'GET') {
      const r = record()
      return send(res, 200, {
        name,
        active: r.active,
        revisions: r.revisions.map((x) => revisionView(x, r)),
      })
    }
    const input = parseDeployInput(await readJson(req))
    const result = await ctx.rollout.apply(
      name,
      {
        cause: { kind: 'deploy' },
        image: input.image,
        settings: input.settings,
        unsetSettings: input.unset,
        keys: input.keys,
        limits: input.limits,
      },
      { create: true },
    )
    return send(res, result.created ? 201 : 200, rolloutAnswer(ctx.apps, result))
  }
  if (what === 'revisions' && rest.length === 2) {
    allow('GET')
    const r = record()
    const revision = r.revisions.find((x) => String(x.number) === item)
    if (!revision)
      throw new ThawError('REVISION_NOT_FOUND', `app "${name}" has no revision ${item}`, {
        fault: 'user',
      })
    return send(res, 200, revisionView(revision, r))
  }
  if (what === 'rollback' && rest.length === 1) {
    allow('POST')
    const r = record()
    const { revision } = parseRollbackInput(await readJson(req))
    const to = revision ?? previousOf(r)
    const result = await ctx.rollout.apply(name, { cause: { kind: 'rollback', to } }, { from: to })
    return send(res, 200, rolloutAnswer(ctx.apps, result))
  }
  if (what === 'settings' && rest.length === 1) {
    allow('GET', 'PATCH')
    if (req.method === 'GET')
      return send(res, 200, { settings: (ctx.apps.get(name) ?? notFound(name)).settings })
    const patch = parseSettingsPatch(await readJson(req))
    const change = {
      cause: { kind: 'settings' as const },
      settings: patch.set,
      unsetSettings: patch.unset,
    }
    return send(res, 200, rolloutAnswer(ctx.apps, await ctx.rollout.apply(name, change)))
  }
  if (what === 'keys' && rest.length === 1) {
    allow('GET')
    return send(res, 200, { keys: (ctx.apps.get(name) ?? notFound(name)).keys })
  }
  if (what === 'keys' && item !== undefined && rest.length === 2) {
    allow('PUT', 'DELETE')
    if (!isKeyName(item))
      throw new ThawError('APP_INVALID', `invalid key name "${item}"`, { fault: 'user' })
    const app = ctx.apps.get(name) ?? notFound(name)
    if (req.method === 'DELETE') {
      if (app.keys[item] === undefined)
        throw new ThawError('KEY_NOT_FOUND', `app "${name}" has no key "${item}"`, {
          fault: 'user',
        })
      await ctx.rollout.apply(name, { cause: { kind: 'keys' }, unsetKeys: [item] })
      res.writeHead(204).end()
      return true
    }
    const value = parseKeyInput(await readJson(req)).value ?? generateKey()
    const result = await ctx.rollout.apply(name, {
      cause: { kind: 'keys' },
      keys: { [item]: value },
    })
    return send(res, 200, { name: item, value, revision: result.app.revision })
  }
  return false
}

/** What a change answers: the app's name, the revision now active, and what happened. */
export function rolloutAnswer(apps: AppStore, r: RolloutResult) {
  return {
    app: r.app.name,
    created: r.created,
    restarted: r.restarted,
    revision: revisionView(r.revision, apps.record(r.app.name)!),
  }
}

/** The newest revision older than the active one that did not fail. */
function previousOf(record: AppRecord): number {
  const before = record.revisions.find((r) => r.number < record.active && !r.failed)
  if (!before) {
    throw new ThawError(
      'REVISION_NOT_FOUND',
      `app "${record.name}" has no revision before ${record.active} to roll back to`,
      { fault: 'user' },
    )
  }
  return before.number
}

function send(res: ServerResponse, status: number, body: unknown): true {
  sendJson(res, status, body)
  return true
}

function notFound(name: string): never {
  throw new ThawError('APP_NOT_FOUND', `no app named "${name}"`, { fault: 'user' })
}
