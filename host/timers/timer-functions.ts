import type { FunctionInfo } from '../../runtime/protocol/worker-messages.ts'
import { parseSchedule, type Schedule } from './schedule.ts'

/** A timer-triggered function, as the scheduler runs it. */
export interface TimerSpec {
  function: string
  schedule: Schedule
  runOnStartup: boolean
}

/**
 * The timer triggers among an app's functions: the binding of type timerTrigger (`app.timer`
 * in @azure/functions v4, or a function.json of a custom handler) with its `schedule` and
 * `runOnStartup`. A function whose schedule does not parse is reported, not run.
 */
export function timerSpecs(
  functions: readonly FunctionInfo[],
  settings: Record<string, string | undefined> = {},
): { timers: TimerSpec[]; problems: { function: string; message: string }[] } {
  const timers: TimerSpec[] = []
  const problems: { function: string; message: string }[] = []
  for (const fn of functions) {
    if (fn.trigger.toLowerCase() !== 'timertrigger') continue
    const binding = Object.values(fn.bindings).find(
      (b) =>
        typeof b === 'object' &&
        b !== null &&
        String((b as { type?: unknown }).type).toLowerCase() === 'timertrigger',
    ) as { schedule?: unknown; runOnStartup?: unknown } | undefined
    if (typeof binding?.schedule !== 'string') {
      problems.push({ function: fn.name, message: 'the timer trigger has no schedule' })
      continue
    }
    try {
      const schedule = parseSchedule(binding.schedule, settings)
      const runOnStartup = binding.runOnStartup === true || binding.runOnStartup === 'true'
      timers.push({ function: fn.name, schedule, runOnStartup })
    } catch (err) {
      problems.push({ function: fn.name, message: (err as Error).message })
    }
  }
  return { timers, problems }
}
