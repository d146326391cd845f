import { describeError, ThawError } from '../../runtime/errors.ts'
import type { App } from '../apps/app-spec.ts'
import type { AppStore } from '../apps/app-store.ts'
import {
  sameRuntime,
  type Revision,
  type RevisionChange,
  type RevisionFunction,
} from '../apps/revision.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { Pool } from '../pool/pool.ts'
import { startLogsOf } from '../pool/start-logs.ts'
import { createRouteTable, type HttpFunctionSpec } from '../router/index.ts'

export interface RolloutResult {
  app: App
  /** The revision now active. */
  revision: Revision
  created: boolean
  /** False when the change did not touch how the app runs (keys only, or the same content). */
  restarted: boolean
}

/** A revision that failed its health gate: stored as failed, the active one keeps serving. */
export class RevisionFailedError extends ThawError {
  constructor(
    message: string,
    readonly detail: { revision: number; logs: string[] },
    cause: unknown,
  ) {
    super('REVISION_FAILED', message, { fault: 'user', cause })
  }
}

export interface Rollout {
  /**
   * Makes `change` the app's new active revision, health-gated: when it runs differently
   * (image, settings, limits), one node of it is started and its functions loaded (the worker's
   * load result; a custom handler's port answering) before it takes traffic; the old nodes then
   * drain. A start that fails throws REVISION_FAILED (with the node's log lines) and stores the
   * revision as failed: the active one keeps serving. Changes to one app run one at a time.
   */
  apply(
    name: string,
    change: RevisionChange,
    o?: { from?: number; create?: boolean },
  ): Promise<RolloutResult>
}

export function createRollout(o: { apps: AppStore; pool: Pool; logger: HostLogger }): Rollout {
  const queues = new Map<string, Promise<unknown>>()
  const apply = async (
    name: string,
    change: RevisionChange,
    options: { from?: number; create?: boolean } = {},
  ) => {
    const draft = o.apps.draft(name, change, options)
    const current = o.apps.get(name)
    if (current && sameRuntime(current, draft.revision)) {
      const functions = o.apps
        .record(name)
        ?.revisions.find((r) => r.number === current.revision)?.functions
      return done(await o.apps.commit(draft, functions && { functions }), draft.created, false)
    }
    const prepared = await o.pool.prepare(draft.app).catch(async (err: unknown) => {
      const logs = startLogsOf(err)
      const error = describeError(err instanceof Error && err.cause ? err.cause : err)
      const failed = await o.apps.recordFailure(draft, { error, logs })
      o.logger.log('warn', `revision ${failed.number} refused: ${error}`, {
        app: name,
        revision: failed.number,
      })
      const message = `revision ${failed.number} of ${name} did not start; ${current ? `revision ${current.revision} keeps serving` : 'the app was not created'}: ${error}`
      throw new RevisionFailedError(message, { revision: failed.number, logs }, err)
    })
    try {
      const functions = functionsOf(prepared.functions, prepared.routePrefix)
      const app = await o.apps.commit(draft, { functions })
      o.logger.log('info', `revision ${app.revision} is live`, {
        app: name,
        revision: app.revision,
        image: app.image,
      })
      return done(app, draft.created, true)
    } catch (err) {
      await prepared.discard()
      throw err
    }
  }
  const done = (app: App, created: boolean, restarted: boolean): RolloutResult => {
    const revision = o.apps.record(app.name)!.revisions.find((r) => r.number === app.revision)!
    return { app, revision, created, restarted }
  }
  return {
    apply(name, change, options) {
      const run = (queues.get(name) ?? Promise.resolve()).then(() => apply(name, change, options))
      const settled = run.catch(() => {})
      queues.set(name, settled)
      void settled.then(() => {
        if (queues.get(name) === settled) queues.delete(name)
      })
      return run
    },
  }
}

/** Functions as the route table lays them out (prefix included), for lists and URLs. */
function functionsOf(specs: HttpFunctionSpec[], routePrefix: string): RevisionFunction[] {
  return createRouteTable(specs, { routePrefix }).entries.map((e) => ({
    name: e.fn.name,
    path: e.path,
    methods: e.fn.methods,
    authLevel: e.fn.authLevel,
  }))
}
