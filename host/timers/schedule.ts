import { CronExpressionParser } from 'cron-parser'
import { ThawError } from '../../runtime/errors.ts'

/** A timer trigger's schedule: the next occurrence strictly after a time. */
export interface Schedule {
  /** The expression as written (after `%SETTING%` was resolved). */
  readonly expression: string
  next(after: Date): Date
}

/**
 * Parses an NCRONTAB expression as Azure Functions' timer trigger takes it: six fields,
 * `{second} {minute} {hour} {day} {month} {day-of-week}` (DOCS functions-bindings-timer.md),
 * with `*`, ranges, lists, steps and names (`0 30 9 * * Mon-Fri`). A schedule of the form
 * `%NAME%` is read from the app setting NAME, as Azure does. Times are UTC (Azure's default
 * without WEBSITE_TIME_ZONE, which is honoured when set to an IANA name). The TimeSpan form
 * (`00:05:00`) of dedicated plans is not supported. Throws SCHEDULE_INVALID (a user fault).
 */
export function parseSchedule(
  text: string,
  settings: Record<string, string | undefined> = {},
): Schedule {
  let expression = text.trim()
  const setting = /^%([^%]+)%$/.exec(expression)
  if (setting) {
    const value = settings[setting[1]!]
    if (value === undefined) throw invalid(text, `the app setting ${setting[1]} is not set`)
    expression = value.trim()
  }
  const fields = expression.split(/\s+/).filter(Boolean)
  if (fields.length !== 6) {
    throw invalid(
      text,
      `expected six fields ({second} {minute} {hour} {day} {month} {day-of-week}), got ${fields.length}`,
    )
  }
  const tz = settings.WEBSITE_TIME_ZONE || 'UTC'
  try {
    // Parsed once here so a bad schedule fails at load, not at its first occurrence.
    CronExpressionParser.parse(expression, { tz })
  } catch (err) {
    throw invalid(text, (err as Error).message)
  }
  return {
    expression,
    next(after) {
      return CronExpressionParser.parse(expression, { currentDate: after, tz }).next().toDate()
    },
  }
}

function invalid(text: string, why: string): ThawError {
  return new ThawError('SCHEDULE_INVALID', `schedule "${text}": ${why}`, { fault: 'user' })
}
