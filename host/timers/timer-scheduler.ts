import type { TimerSpec } from './timer-functions.ts'
import type { TimerStatus, TimerStatusStore } from './timer-status-store.ts'

/**
 * What a timer function receives, as Azure's TimerInfo in the host's JSON (PascalCase; the
 * @azure/functions library hands it to the function camel-cased: `timer.isPastDue`).
 */
export interface TimerInfo {
  Schedule: { AdjustForDST: boolean }
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null
  IsPastDue: boolean
}

export interface TimerSchedulerOptions {
  timers: readonly TimerSpec[]
  store: TimerStatusStore
  /** The status key of a timer (the function's name locally, `<app>/<function>` on a host). */
  keyOf: (fn: string) => string
  /** Runs the function; a rejection is reported to onError and the schedule goes on. */
  fire: (fn: string, info: TimerInfo, why: 'schedule' | 'startup' | 'past-due') => Promise<void>
  onError?: (fn: string, err: unknown) => void
}

export interface TimerScheduler {
  /** No timer fires after this; a run in progress finishes. Idempotent. */
  stop(): void
}

/** setTimeout takes at most 2^31 − 1 ms; a later occurrence is waited for in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * Runs timer triggers as Azure's TimerTriggerListener does: at start, a timer whose stored
 * `next` occurrence has passed (the host was down) fires once at once with IsPastDue = true;
 * otherwise one with runOnStartup fires at once. Then each fires at its schedule's next
 * occurrence after now. A timer never runs twice at once: the next occurrence is computed
 * when a run ends, so occurrences that pass meanwhile are skipped. The status (last, next) is
 * stored after every run and at start, so a restart knows what it missed.
 */
export function startTimerScheduler(o: TimerSchedulerOptions): TimerScheduler {
  let stopped = false
  const handles = new Set<NodeJS.Timeout>()
  const sleepUntil = (at: number) =>
    new Promise<void>((resolve) => {
      const step = () => {
        const left = at - Date.now()
        if (stopped || left <= 0) return resolve()
        const t = setTimeout(
          () => {
            handles.delete(t)
            step()
          },
          Math.min(left, MAX_DELAY_MS),
        )
        handles.add(t)
      }
      step()
    })

  async function run(timer: TimerSpec): Promise<void> {
    const key = o.keyOf(timer.function)
    const fire = async (info: TimerInfo, why: 'schedule' | 'startup' | 'past-due') => {
      try {
        await o.fire(timer.function, info, why)
      } catch (err) {
        o.onError?.(timer.function, err)
      }
    }
    const stored = o.store.get(key)
    const now = new Date()
    if (stored && Date.parse(stored.next) < now.getTime()) {
      await fire(timerInfo(stored, true), 'past-due')
    } else if (timer.runOnStartup) {
      await fire(timerInfo(stored, false), 'startup')
    }
    let last = stored?.last
    for (;;) {
      if (stopped) return
      const next = timer.schedule.next(new Date())
      const status: TimerStatus = {
        last,
        next: next.toISOString(),
        lastUpdated: new Date().toISOString(),
      }
      await o.store.set(key, status).catch((err: unknown) => o.onError?.(timer.function, err))
      await sleepUntil(next.getTime())
      if (stopped) return
      await fire(timerInfo(status, false), 'schedule')
      last = status.next
    }
  }

  for (const timer of o.timers) void run(timer)
  return {
    stop() {
      stopped = true
      for (const t of handles) clearTimeout(t)
      handles.clear()
    },
  }
}

function timerInfo(status: TimerStatus | undefined, pastDue: boolean): TimerInfo {
  return {
    Schedule: { AdjustForDST: true },
    ScheduleStatus: status
      ? {
          Last: status.last ?? new Date(0).toISOString(),
          Next: status.next,
          LastUpdated: status.lastUpdated,
        }
      : null,
    IsPastDue: pastDue,
  }
}
