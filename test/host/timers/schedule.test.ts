import { describe, expect, it } from 'vitest'
import { parseSchedule } from '../../../host/timers/schedule.ts'
import { timerSpecs } from '../../../host/timers/timer-functions.ts'

const at = (iso: string) => new Date(iso)

describe('parseSchedule (six-field NCRONTAB)', () => {
  it.each([
    // every second: the next whole second
    ['*/1 * * * * *', '2026-01-01T00:00:00.500Z', '2026-01-01T00:00:01.000Z'],
    // Azure's example: every five minutes
    ['0 */5 * * * *', '2026-01-01T00:03:10Z', '2026-01-01T00:05:00.000Z'],
    // once at the top of every hour
    ['0 0 * * * *', '2026-01-01T10:00:00Z', '2026-01-01T11:00:00.000Z'],
    // 9:30 every weekday: from a Saturday, the Monday
    ['0 30 9 * * 1-5', '2026-01-03T12:00:00Z', '2026-01-05T09:30:00.000Z'],
    // names: 9:30 on Mondays
    ['0 30 9 * * Mon', '2026-01-03T12:00:00Z', '2026-01-05T09:30:00.000Z'],
    // every 15 seconds
    ['*/15 * * * * *', '2026-01-01T00:00:16Z', '2026-01-01T00:00:30.000Z'],
    // the first of the month
    ['0 0 0 1 * *', '2026-01-15T00:00:00Z', '2026-02-01T00:00:00.000Z'],
  ])('%s after %s is %s', (expression, after, next) => {
    expect(parseSchedule(expression).next(at(after)).toISOString()).toBe(next)
  })

  it('is strictly after the given time', () => {
    expect(parseSchedule('0 0 * * * *').next(at('2026-01-01T10:00:00Z')).toISOString()).toBe(
      '2026-01-01T11:00:00.000Z',
    )
  })

  it('reads %NAME% from the app settings', () => {
    const s = parseSchedule('%MY_SCHEDULE%', { MY_SCHEDULE: '0 0 * * * *' })
    expect(s.expression).toBe('0 0 * * * *')
  })

  it('honours WEBSITE_TIME_ZONE', () => {
    const s = parseSchedule('0 0 9 * * *', { WEBSITE_TIME_ZONE: 'Europe/Berlin' })
    expect(s.next(at('2026-01-01T00:00:00Z')).toISOString()).toBe('2026-01-01T08:00:00.000Z')
  })

  it.each([
    ['* * * * *', 'five fields (crontab without seconds)'],
    ['* * * * * * *', 'seven fields'],
    ['60 * * * * *', 'second out of range'],
    ['0 0 25 * * *', 'hour out of range'],
    ['0 0 0 * 13 *', 'month out of range'],
    ['nonsense', 'not a schedule'],
    ['', 'empty'],
    ['%UNSET%', 'a setting that is not set'],
    ['00:05:00', 'the TimeSpan form (dedicated plans only; not supported)'],
  ])('refuses %j (%s) as SCHEDULE_INVALID, a user fault', (expression) => {
    expect(() => parseSchedule(expression)).toThrow(
      expect.objectContaining({ code: 'SCHEDULE_INVALID', fault: 'user' }),
    )
  })
})

describe('timerSpecs', () => {
  it('finds timer triggers with their schedule and runOnStartup, and reports bad ones', () => {
    const fn = (name: string, trigger: string, binding: Record<string, unknown>) => ({
      name,
      trigger,
      methods: null,
      route: null,
      authLevel: null,
      servable: false,
      bindings: { t: { type: trigger, direction: 'in', ...binding } },
    })
    const { timers, problems } = timerSpecs([
      fn('tick', 'timerTrigger', { schedule: '*/1 * * * * *', runOnStartup: true }),
      fn('hourly', 'timerTrigger', { schedule: '0 0 * * * *' }),
      fn('broken', 'timerTrigger', { schedule: '* * *' }),
      fn('web', 'httpTrigger', {}),
    ])
    expect(timers.map((t) => [t.function, t.schedule.expression, t.runOnStartup])).toEqual([
      ['tick', '*/1 * * * * *', true],
      ['hourly', '0 0 * * * *', false],
    ])
    expect(problems).toEqual([
      { function: 'broken', message: expect.stringContaining('six fields') },
    ])
  })
})
