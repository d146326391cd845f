import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { initProject } from '../../../host/init/init-project.ts'
import { createRunner, type RunnerEvent } from '../../../host/local/index.ts'
import { tmpDir } from '../../support/tmp.ts'

/** The Python template in a fresh folder, in one protocol or the other, plus a timer function. */
async function pythonApp(forwarding: boolean): Promise<string> {
  const dir = join(await tmpDir(), 'py')
  await initProject({ dir, template: 'custom-handler-python', install: 'none' })
  const hostJson = JSON.parse(await readFile(join(dir, 'host.json'), 'utf8'))
  hostJson.customHandler.enableForwardingHttpRequest = forwarding
  await writeFile(join(dir, 'host.json'), JSON.stringify(hostJson))
  await mkdir(join(dir, 'tick'))
  await writeFile(
    join(dir, 'tick', 'function.json'),
    JSON.stringify({
      bindings: [
        { type: 'timerTrigger', direction: 'in', name: 'timer', schedule: '0 */5 * * * *' },
      ],
    }),
  )
  return dir
}

describe.each([false, true])('a Python custom handler (forwarding: %s)', (forwarding) => {
  it('serves its HTTP function and reports its functions, logs and failures', async () => {
    const events: RunnerEvent[] = []
    const runner = createRunner({
      scriptRoot: await pythonApp(forwarding),
      logger: (e) => events.push(e),
    })
    try {
      await runner.ready
      expect(runner.functions()).toEqual([
        expect.objectContaining({
          name: 'hello',
          trigger: 'httpTrigger',
          methods: ['GET', 'POST'],
          authLevel: 'anonymous',
          servable: true,
        }),
        expect.objectContaining({ name: 'tick', trigger: 'timerTrigger', servable: true }),
      ])
      const get = await runner.dispatchFetch('/api/hello?name=Ada')
      expect(get.status).toBe(200)
      expect(await get.text()).toBe('Hello, Ada!')
      const post = await runner.dispatchFetch('/api/hello', { method: 'POST', body: 'Grace' })
      expect(await post.text()).toBe('Hello, Grace!')
      expect((await runner.dispatchFetch('/api/hello', { method: 'PUT' })).status).toBe(405)

      const userLogs = events
        .filter((e) => e.type === 'log' && e.category === 'user')
        .map((e) => (e as { message: string }).message)
      // Only the payload protocol carries Logs; a forwarded request is answered as plain HTTP.
      if (forwarding) expect(userLogs).toEqual([])
      else
        expect(userLogs).toEqual([
          expect.stringMatching(
            /^hello was called with GET http:\/\/127\.0\.0\.1:\d+\/api\/hello\?name=Ada$/,
          ),
          expect.stringMatching(/^hello was called with POST /),
        ])
      expect(
        events
          .filter((e) => e.type === 'invocation-end')
          .map((e) => (e as { outcome: string }).outcome),
      ).toEqual(['succeeded', 'succeeded'])

      // The template's handler has no /tick route: a non-2xx payload answer is a failed invocation.
      await expect(runner.invoke('tick', {})).rejects.toMatchObject({
        code: 'FUNCTION_FAILED',
        message: expect.stringContaining('answered 404'),
      })
    } finally {
      await runner.dispose()
    }
  })
})
