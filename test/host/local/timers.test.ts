import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createRunner, type RunnerEvent } from '../../../host/local/index.ts'
import { makeApp } from '../../support/function-app.ts'

/** A timer every second that warns, one that runs only at startup; each says if it was past due. */
const TIMER_APP = {
  'package.json': '{ "main": "index.js" }',
  'index.js': `const { app } = require('@azure/functions')
app.timer('tick', { schedule: '*/1 * * * * *', handler: async (timer, context) => { context.warn('tick pastDue=' + timer.isPastDue) } })
app.timer('boot', { schedule: '0 0 0 1 1 *', runOnStartup: true, handler: async (timer, context) => { context.log('boot pastDue=' + timer.isPastDue) } })
`,
}

function start(scriptRoot: string) {
  const events: RunnerEvent[] = []
  const waiters: (() => void)[] = []
  const runner = createRunner({
    scriptRoot,
    logger: (e) => (events.push(e), waiters.splice(0).forEach((w) => w())),
  })
  onTestFinished(() => runner.dispose())
  const logs = (): [string, string][] =>
    events.flatMap((e) =>
      e.type === 'log' && e.category === 'user' ? [[e.level, e.message] as [string, string]] : [],
    )
  /** Resolves once `test` holds for the user logs (the test's timeout is the deadline). */
  const until = (test: (l: [string, string][]) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (test(logs()) ? resolve() : waiters.push(check))
      check()
    })
  return { runner, logs, until }
}

describe('timer triggers in thaw start', () => {
  it('fires a one-second schedule, runs runOnStartup once, and fires past due after a restart', async () => {
    const dir = await makeApp(TIMER_APP)
    const first = start(dir)
    await first.until((l) => l.filter(([, m]) => m === 'tick pastDue=false').length >= 2)
    expect(first.logs()).toContainEqual(['information', 'boot pastDue=false'])
    // context.warn stays a warning (not information)
    expect(first.logs().find(([, m]) => m.startsWith('tick'))?.[0]).toBe('warning')
    await first.runner.dispose()

    // The stored next occurrence passes while nothing runs: the next start fires it past due.
    const status = JSON.parse(await readFile(join(dir, '.thaw', 'timers.json'), 'utf8')) as {
      records: Record<string, { next: string }>
    }
    const next = Date.parse(status.records.tick!.next)
    while (Date.now() <= next) await new Promise((r) => setTimeout(r, 100))
    const second = start(dir)
    await second.until((l) => l.some(([, m]) => m === 'tick pastDue=true'))
    const ticks = second.logs().filter(([, m]) => m.startsWith('tick'))
    expect(ticks[0]).toEqual(['warning', 'tick pastDue=true']) // the first run after the restart
  })
})
