import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseSchedule } from '../../../host/timers/schedule.ts'
import { startTimerScheduler, type TimerInfo } from '../../../host/timers/timer-scheduler.ts'
import { openTimerStatusStore } from '../../../host/timers/timer-status-store.ts'
import { tmpDir } from '../../support/tmp.ts'

type Fired = { fn: string; info: TimerInfo; why: string }

async function run(o: {
  schedule: string
  runOnStartup?: boolean
  stored?: { last?: string; next: string }
}) {
  const file = join(await tmpDir('thaw-timers-'), 'timers.json')
  const store = await openTimerStatusStore(file)
  if (o.stored) await store.set('tick', { ...o.stored, lastUpdated: new Date().toISOString() })
  const fired: Fired[] = []
  const waiters: (() => void)[] = []
  const scheduler = startTimerScheduler({
    timers: [
      {
        function: 'tick',
        schedule: parseSchedule(o.schedule),
        runOnStartup: o.runOnStartup ?? false,
      },
    ],
    store,
    keyOf: (fn) => fn,
    fire: async (fn, info, why) => {
      fired.push({ fn, info, why })
      for (const w of waiters.splice(0)) w()
    },
  })
  onTestFinished(() => scheduler.stop())
  /** Resolves once `n` runs happened (the test's own timeout is the deadline). */
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (fired.length >= n ? resolve() : waiters.push(check))
      check()
    })
  return { fired, until, file }
}

describe('timer scheduler', () => {
  it('fires a one-second schedule again and again, and stores the next occurrence', async () => {
    const t = await run({ schedule: '*/1 * * * * *' })
    await t.until(2)
    expect(t.fired.slice(0, 2).map((f) => [f.why, f.info.IsPastDue])).toEqual([
      ['schedule', false],
      ['schedule', false],
    ])
    const stored = JSON.parse(await readFile(t.file, 'utf8')) as {
      records: Record<string, { next: string }>
    }
    expect(Date.parse(stored.records.tick!.next)).not.toBeNaN()
  })

  it('fires at start with runOnStartup (not past due)', async () => {
    const t = await run({ schedule: '0 0 0 1 1 *', runOnStartup: true })
    await t.until(1)
    expect(t.fired[0]).toMatchObject({ fn: 'tick', why: 'startup', info: { IsPastDue: false } })
  })

  it('fires once at start with IsPastDue when the stored next occurrence has passed, with that status', async () => {
    const next = '2026-01-01T00:00:00.000Z'
    const t = await run({
      schedule: '0 0 0 1 1 *',
      runOnStartup: true,
      stored: { last: '2025-01-01T00:00:00.000Z', next },
    })
    await t.until(1)
    expect(t.fired).toHaveLength(1) // past due wins over runOnStartup, as in Azure's listener
    expect(t.fired[0]).toMatchObject({
      why: 'past-due',
      info: { IsPastDue: true, ScheduleStatus: { Last: '2025-01-01T00:00:00.000Z', Next: next } },
    })
  })

  it('does not fire at start when nothing is past due and runOnStartup is off', async () => {
    const t = await run({ schedule: '0 0 0 1 1 *', stored: { next: '2999-01-01T00:00:00.000Z' } })
    // Let the scheduler's start run (it stores the next occurrence first).
    await new Promise((r) => setTimeout(r, 100))
    expect(t.fired).toEqual([])
  })
})
