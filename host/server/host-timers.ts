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
   * After an app is created or changed, start one node to learn its functions (Azure's trigger
   * sync), so a timer of an app nobody calls runs. Off: an app's timers are known from its first
   * node on (and from then on, across restarts).
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
  /** The app's updatedAt these were learned for: a changed app is learned again. */
  updatedAt: string
  functions: Pick<FunctionInfo, 'name' | 'trigger' | 'bindings'>[]
}
const knownFunctions = z.object({
  updatedAt: z.string(),
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
  const schedulers = new Map<string, TimerScheduler>()
  let closed = false

  const schedule = (app: App, known: KnownFunctions) => {
    schedulers.get(app.name)?.stop()
    schedulers.delete(app.name)
    if (closed) return
    const { timers, problems } = timerSpecs(known.functions as FunctionInfo[], app.settings)
    for (const p of problems) {
      o.logs.append(app.name, {
        function: p.function,
        level: 'warn',
        source: 'host',
        message: `timer ${p.function} will not run: ${p.message}`,
      })
    }
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
    schedulers.set(app.name, scheduler)
  }

  /** One node of the app started and released: its functions arrive through learned(). */
  const sync = (app: App) => {
    const signal = AbortSignal.timeout(app.limits.startTimeoutMs + 5000)
    o.pool
      .nodesOf(app)
      .acquire(signal)
      .then(
        (slot) => slot.release(),
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
    if (known && known.updatedAt === app.updatedAt) schedule(app, known)
    else if (o.syncTriggers) sync(app)
  }

  o.apps.onChange((name, app) => {
    schedulers.get(name)?.stop()
    schedulers.delete(name)
    if (app) return adopt(app)
    o.logs.forget(name)
    void catalog.delete(name)
  })
  for (const app of o.apps.list()) adopt(app)

  return {
    learned(app, functions) {
      if (closed || o.apps.get(app.name)?.updatedAt !== app.updatedAt) return
      const known: KnownFunctions = {
        updatedAt: app.updatedAt,
        functions: functions.map((f) => ({
          name: f.name,
          trigger: f.trigger,
          bindings: f.bindings,
        })),
      }
      const before = catalog.get(app.name)
      if (before && JSON.stringify(before) === JSON.stringify(known)) {
        if (!schedulers.has(app.name)) schedule(app, known)
        return
      }
      void catalog.set(app.name, known)
      schedule(app, known)
    },
    close() {
      closed = true
      for (const s of schedulers.values()) s.stop()
      schedulers.clear()
    },
  }
}
