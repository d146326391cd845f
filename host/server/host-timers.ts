import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { z } from 'zod'
import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import type { App } from '../apps/app-spec.ts'
import type { AppStore } from '../apps/app-store.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import { openJsonRecordsFile, type JsonRecordsFile } from '../os/json-records-file.ts'
import type { Pool } from '../pool/pool.ts'
import { timerSpecs } from '../timers/timer-functions.ts'
import { startTimerScheduler, type TimerScheduler } from '../timers/timer-scheduler.ts'
import { openTimerStatusStore } from '../timers/timer-status-store.ts'
import { runFunction, takeFunction } from './function-invoke.ts'

export interface HostTimersOptions {
  stateDir: string
  apps: AppStore
  pool: Pool
  logs: AppLogs
  /**
   * After an app is created or changed (or at start) when its functions are not known for its
   * image and settings, start one node ahead of traffic to learn them (Azure's trigger sync), so
   * a timer of an app nobody calls runs. Off: an app's timers are known from its first node on
   * (and from then on, across restarts).
   */
  syncTriggers: boolean
}

export interface HostTimers {
  /** A node of `app` started with these functions (pool.ts onStarted). */
  learned(app: App, functions: readonly FunctionInfo[]): void
  /** Stops every timer. Idempotent. */
  close(): void
}

/** What the host knows of an app's functions without a node: enough to schedule its timers. */
interface KnownFunctions {
  /** Of the image and settings these were learned from (runtimeOf): another is learned again. */
  runtime: string
  functions: Pick<FunctionInfo, 'name' | 'trigger' | 'bindings'>[]
}
const knownFunctions = z.object({
  runtime: z.string(),
  functions: z.array(
    z.object({
      name: z.string(),
      trigger: z.string(),
      bindings: z.record(z.string(), z.unknown()),
    }),
  ),
}) satisfies z.ZodType<KnownFunctions>

/**
 * The timer triggers of a host's apps (host/timers). Each app's functions are learned from its
 * nodes and kept in `<stateDir>/functions.json`; timer statuses (last and next occurrence, for
 * isPastDue after a restart) in `<stateDir>/timers.json`, keyed `<app>/<function>`. A due timer
 * takes a node of its app like a request does (a cold start when it has none) and runs the
 * function with Azure's TimerInfo; runs are in the app's log and recent invocations.
 */
export async function startHostTimers(o: HostTimersOptions): Promise<HostTimers> {
  const catalog: JsonRecordsFile<KnownFunctions> = await openJsonRecordsFile(
    join(o.stateDir, 'functions.json'),
    knownFunctions,
  )
  const store = await openTimerStatusStore(join(o.stateDir, 'timers.json'))
  /** Each app's timers, with the runtime (runtimeOf) they were made for. */
  const scheduled = new Map<string, { runtime: string; scheduler: TimerScheduler | undefined }>()
  let closed = false

  const unschedule = (name: string) => {
    scheduled.get(name)?.scheduler?.stop()
    scheduled.delete(name)
  }

  /** Starts the app's timers, unless those of the same runtime run (a keys change keeps them). */
  const schedule = (app: App, known: KnownFunctions) => {
    if (closed || scheduled.get(app.name)?.runtime === known.runtime) return
    unschedule(app.name)
    const { timers, problems } = timerSpecs(known.functions as FunctionInfo[], app.settings)
    for (const p of problems) {
      o.logs.append(app.name, {
        function: p.function,
        level: 'warn',
        source: 'host',
        message: `timer ${p.function} will not run: ${p.message}`,
      })
    }
    scheduled.set(app.name, { runtime: known.runtime, scheduler: undefined })
    if (timers.length === 0) return
    const scheduler = startTimerScheduler({
      timers,
      store,
      keyOf: (fn) => `${app.name}/${fn}`,
      fire: async (fn, info) => {
        const current = o.apps.get(app.name)
        if (!current) return
        const taken = await takeFunction(
          o,
          current,
          fn,
          AbortSignal.timeout(current.limits.startTimeoutMs + current.limits.requestTimeoutMs),
        )
        await runFunction(o, current, taken, info, 'timer')
      },
      onError: (fn, err) =>
        o.logs.append(app.name, {
          function: fn,
          level: 'error',
          source: 'host',
          message: `timer ${fn} did not run: ${(err as Error).message}`,
        }),
    })
    scheduled.set(app.name, { runtime: known.runtime, scheduler })
  }

  /**
   * One node of the app started ahead of any request, as a rollout's health gate starts one: its
   * functions arrive through learned(). It takes no slot (an acquire here would take the node's
   * first request, whose answer ends the start's recording, so the recording never ended and the
   * app's first profile never reached the edge); the node serves the app's first request, or
   * drains when idle, its recording dropped.
   */
  const sync = (app: App) => {
    o.pool
      .nodesOf(app)
      .prestart()
      .then(
        () => {},
        (err: unknown) =>
          o.logs.append(app.name, {
            level: 'warn',
            source: 'host',
            message: `could not read the app's functions for its timers: ${(err as Error).message}`,
          }),
      )
  }

  const adopt = (app: App) => {
    const known = catalog.get(app.name)
    if (known?.runtime === runtimeOf(app)) return schedule(app, known)
    unschedule(app.name)
    if (o.syncTriggers) sync(app)
  }

  o.apps.onChange((name, app) => {
    if (app) return adopt(app)
    unschedule(name)
    o.logs.forget(name)
    void catalog.delete(name)
  })
  for (const app of o.apps.list()) adopt(app)

  return {
    learned(app, functions) {
      if (closed) return
      // Also a revision not yet active (a rollout's health gate): known when it becomes active.
      const known: KnownFunctions = {
        runtime: runtimeOf(app),
        functions: functions.map((f) => ({
          name: f.name,
          trigger: f.trigger,
          bindings: f.bindings,
        })),
      }
      if (JSON.stringify(catalog.get(app.name)) !== JSON.stringify(known))
        void catalog.set(app.name, known)
      const active = o.apps.get(app.name)
      if (active && runtimeOf(active) === known.runtime) schedule(active, known)
    },
    close() {
      closed = true
      for (const name of [...scheduled.keys()]) unschedule(name)
    },
  }
}

/** What an app's functions depend on: its image and settings (a schedule may be %SETTING%). */
function runtimeOf(app: Pick<App, 'image' | 'settings'>): string {
  const settings = Object.entries(app.settings).sort(([a], [b]) => a.localeCompare(b))
  return createHash('sha256')
    .update(JSON.stringify([app.image, settings]))
    .digest('hex')
}
