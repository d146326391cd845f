import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createRunner, type RunnerEvent } from '../../../host/local/index.ts'
import { makeApp } from '../../support/function-app.ts'

/** A TypeScript function that answers its version, after a short wait (or a long one with ?slow). */
const versionSource = (version: string) => `import { app } from '@azure/functions'
const label: string = '${version}'
app.get('version', {
  handler: async (request, context) => {
    if (request.query.has('slow')) context.log('slow started')
    await new Promise((r) => setTimeout(r, request.query.has('slow') ? 600 : 5))
    return { body: request.query.has('slow') ? label + ' slow' : label }
  },
})
`

async function versionApp(): Promise<{ dir: string; file: string }> {
  const dir = await makeApp({
    'package.json': '{ "main": "dist/src/functions/*.js" }',
    'tsconfig.json': '{ "compilerOptions": { "outDir": "dist", "rootDir": "." } }',
    'src/functions/version.ts': versionSource('v1'),
  })
  return { dir, file: join(dir, 'src/functions/version.ts') }
}

/** Resolves on the next event that matches. */
function nextEvent(
  events: RunnerEvent[],
  listeners: Set<() => void>,
  match: (e: RunnerEvent) => boolean,
) {
  const seen = events.length
  return new Promise<RunnerEvent>((resolve) => {
    const check = () => {
      const e = events.slice(seen).find(match)
      if (e) {
        listeners.delete(check)
        resolve(e)
      }
    }
    listeners.add(check)
  })
}

describe('hot reload', () => {
  it('switches to the new code under a steady request load without failing a request', async () => {
    const { dir, file } = await versionApp()
    const events: RunnerEvent[] = []
    const listeners = new Set<() => void>()
    const runner = createRunner({
      scriptRoot: dir,
      watch: true,
      logger: (e) => {
        events.push(e)
        for (const l of listeners) l()
      },
    })
    try {
      await runner.ready
      const first = runner.served()!.generation
      const answers: string[] = []
      const failures: string[] = []
      let running = true
      const client = async () => {
        while (running) {
          try {
            const res = await runner.dispatchFetch('/api/version')
            const text = await res.text()
            if (res.status !== 200) failures.push(`${res.status} ${text}`)
            else answers.push(text)
          } catch (err) {
            failures.push(String(err))
          }
        }
      }
      const clients = Array.from({ length: 4 }, client)
      while (answers.length < 20) await new Promise((r) => setTimeout(r, 10))

      const switched = nextEvent(
        events,
        listeners,
        (e) => e.type === 'generation-ready' && e.reload,
      )
      const slow = runner.dispatchFetch('/api/version?slow').then((r) => r.text())
      await nextEvent(events, listeners, (e) => e.type === 'log' && e.message === 'slow started')
      await writeFile(file, versionSource('v2'))
      const ready = await switched
      const atSwitch = answers.length
      while (answers.length < atSwitch + 20) await new Promise((r) => setTimeout(r, 10))
      running = false
      await Promise.all(clients)

      expect(failures).toEqual([])
      expect(await slow).toBe('v1 slow') // the request in flight finished on the old generation
      expect(answers.slice(0, 20).every((a) => a === 'v1')).toBe(true)
      expect(answers.slice(-10).every((a) => a === 'v2')).toBe(true)
      expect(new Set(answers)).toEqual(new Set(['v1', 'v2']))
      expect(ready).toMatchObject({ generation: 2 })
      expect(runner.served()!.generation).not.toBe(first)
      await first.exited // the first worker process stopped once its requests were done
      expect(events.some((e) => e.type === 'generation-exited')).toBe(false) // nothing died on its own
    } finally {
      await runner.dispose()
    }
  })

  it('keeps the old code serving when the new code fails to start, and recovers on the fix', async () => {
    const { dir, file } = await versionApp()
    const events: RunnerEvent[] = []
    const listeners = new Set<() => void>()
    const runner = createRunner({
      scriptRoot: dir,
      watch: true,
      logger: (e) => {
        events.push(e)
        for (const l of listeners) l()
      },
    })
    try {
      await runner.ready
      const failed = nextEvent(events, listeners, (e) => e.type === 'generation-failed')
      await writeFile(file, `${versionSource('v2')}\nthrow new Error('broken on purpose')\n`)
      expect(await failed).toMatchObject({
        reload: true,
        message: expect.stringContaining('broken on purpose'),
      })
      expect(await (await runner.dispatchFetch('/api/version')).text()).toBe('v1')

      const fixed = nextEvent(events, listeners, (e) => e.type === 'generation-ready' && e.reload)
      await writeFile(file, versionSource('v3'))
      await fixed
      expect(await (await runner.dispatchFetch('/api/version')).text()).toBe('v3')
    } finally {
      await runner.dispose()
    }
  })
})
