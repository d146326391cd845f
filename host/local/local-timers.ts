import type { InvokeResult } from '../../runtime/protocol/worker-messages.ts'
import { isThawError } from '../../runtime/errors.ts'
import { timerSpecs } from '../timers/timer-functions.ts'
import { startTimerScheduler, type TimerScheduler } from '../timers/timer-scheduler.ts'
import type { TimerStatusStore } from '../timers/timer-status-store.ts'
import type { EventSink } from './generation.ts'
import type { Served } from './served.ts'

/**
 * The timer triggers of what `thaw start` serves (host/timers): functions the allow-list keeps
 * and that are not disabled. Their status is kept in `<app>/.thaw/timers.json` (the watcher
 * ignores .thaw), where Azure's local host keeps it in its storage emulator.
 */
export function startLocalTimers(
  served: Served,
  o: {
    store: TimerStatusStore
    env: Record<string, string>
    emit: EventSink
    invoke: (name: string, input: unknown) => Promise<InvokeResult>
  },
): TimerScheduler {
  const functions = [...served.functions.values()].filter(
    (f) => !served.disabled.has(f.name.toLowerCase()),
  )
  const { timers, problems } = timerSpecs(functions, o.env)
  for (const p of problems) {
    o.emit({
      type: 'note',
      level: 'warning',
      message: `Timer ${p.function} will not run: ${p.message}`,
    })
  }
  return startTimerScheduler({
    timers,
    store: o.store,
    keyOf: (fn) => fn,
    fire: async (fn, info) => {
      await o.invoke(fn, info)
    },
    onError: (fn, err) => {
      // A failed run is printed by its invocation-end event already.
      if (isThawError(err, 'FUNCTION_FAILED') || isThawError(err, 'RUNNER_DISPOSED')) return
      o.emit({
        type: 'note',
        level: 'warning',
        message: `Timer ${fn} did not run: ${(err as Error).message}`,
      })
    },
  })
}
