import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startDirectWorker } from '../../support/worker.ts'
import { tmpDir } from '../../support/tmp.ts'

const APPS = resolve(import.meta.dirname, '../../fixtures/apps')

describe('the functions worker, alone', () => {
  it('says hello, then reports every function with its trigger, methods, route and auth level', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'))
    const ready = await w.ready
    expect(w.messages[0]).toMatchObject({
      type: 'hello',
      protocol: 1,
      pid: w.process.pid,
      node: process.version,
    })
    expect(ready.model).toEqual({
      name: '@azure/functions',
      version: expect.stringMatching(/^4\./),
    })
    expect(ready.streaming).toBe(false)
    const byName = Object.fromEntries(ready.functions.map((f) => [f.name, f]))
    expect(byName.hello).toMatchObject({
      trigger: 'httpTrigger',
      methods: ['GET', 'POST'],
      route: 'hello/{name?}',
      authLevel: 'anonymous',
      servable: true,
    })
    expect(byName.secret).toMatchObject({ authLevel: 'function', methods: ['GET'], route: null })
    expect(byName.manage).toMatchObject({ authLevel: 'admin' })
    // Timers are served (host/timers); other non-HTTP triggers are listed as not served, with why.
    expect(byName.tick).toMatchObject({ trigger: 'timerTrigger', methods: null, servable: true })
    expect(byName.tick!.reason).toBeUndefined() // host/timers serves timers
    expect(byName.orders).toMatchObject({ trigger: 'queueTrigger', servable: false })
    expect(byName.orders!.reason).toMatch(/no event source for "queueTrigger"/)
    await w.process.stop()
  })

  it('reports streaming mode when the app calls app.setup({ enableHttpStream: true })', async () => {
    const w = await startDirectWorker(join(APPS, 'http-streaming'))
    expect((await w.ready).streaming).toBe(true)
    await w.process.stop()
  })

  it('loads every file main matches, CommonJS and ESM, in glob order, then runs appStart hooks', async () => {
    const w = await startDirectWorker(join(APPS, 'modules'))
    await w.ready
    const res = await w.request('order', '/api/order')
    expect(JSON.parse(res.body.toString())).toEqual([
      'first.cjs',
      'second.mjs',
      'more/third.js',
      'appStart',
    ])
    expect((await w.request('fromEsm', '/api/fromEsm')).body.toString()).toBe('esm')
    await w.process.stop()
  })

  it('loads a "type": "module" app with import()', async () => {
    const w = await startDirectWorker(join(APPS, 'esm-app'))
    expect((await w.ready).functions.map((f) => f.name)).toEqual(['esmHello'])
    expect((await w.request('esmHello', '/api/hello?x=1')).body.toString()).toBe('esm 1')
    await w.process.stop()
  })

  it('refuses to register functions once startup is over', async () => {
    const w = await startDirectWorker(join(APPS, 'modules'))
    await w.ready
    const res = await w.request('late', '/api/late')
    expect(res.status).toBe(409)
    expect(res.body.toString()).toBe('A function can only be registered during app startup.')
    await w.process.stop()
  })

  // Startup failures: a `fatal` message with the worker's wording, then exit code 1.
  const fatal: [string, Record<string, string>, RegExp][] = [
    [
      'main matches no file',
      { 'package.json': '{"main":"dist/*.js"}' },
      /unable to load entry point "dist\/\*\.js": Found zero files matching the supplied pattern/,
    ],
    [
      'an entry point throws',
      { 'package.json': '{"main":"index.js"}', 'index.js': 'throw new Error("bad config")' },
      /unable to load entry point "index\.js": bad config/,
    ],
    [
      'an entry point has a syntax error',
      { 'package.json': '{"main":"index.js"}', 'index.js': 'const = 1' },
      /unable to load entry point "index\.js"/,
    ],
  ]
  it.each(fatal)('reports fatal when %s', async (_name, files, message) => {
    const dir = await tmpDir()
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
    const w = await startDirectWorker(dir)
    await expect(w.ready).rejects.toThrow(message)
    expect(await w.process.exited).toBe(1)
  })

  it('runs log hooks on user logs: they may change level and message', async () => {
    const w = await startDirectWorker(join(APPS, 'modules'))
    await w.ready
    await w.request('logs', '/api/logs')
    // Control messages may arrive after the HTTP answer (the worker batches them per loop turn).
    await w.waitFor((m) => m.type === 'invocation-end' && m.functionName === 'logs')
    const logs = w.messages.filter((m) => m.type === 'log' && m.category === 'user')
    expect(logs).toEqual([
      expect.objectContaining({
        level: 'warning',
        message: 'secret: [redacted]',
        functionName: 'logs',
      }),
      expect.objectContaining({ level: 'warning', message: 'plain warning', functionName: 'logs' }),
    ])
    await w.process.stop()
  })

  it('refuses a request without x-thaw-function (400), for an unknown function (404), with bad route params (400)', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'))
    await w.ready
    expect((await w.request(undefined, '/api/hello')).status).toBe(400)
    const unknown = await w.request('nope', '/api/nope')
    expect(unknown.status).toBe(404)
    expect(JSON.parse(unknown.body.toString())).toEqual({
      error: { message: 'function "nope" is not registered' },
    })
    expect((await w.request('hello', '/api/hello', { rawParams: '[1]' })).status).toBe(400)
    await w.process.stop()
  })

  it('turns a handler error into a 500, reports it, and keeps serving', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'))
    await w.ready
    const res = await w.request('boom', '/api/boom', { headers: { 'x-ms-invocation-id': 'inv-1' } })
    expect(res.status).toBe(500)
    expect(res.body.length).toBe(0)
    const end = await w.waitFor((m) => m.type === 'invocation-end' && m.invocationId === 'inv-1')
    expect(end).toMatchObject({
      functionName: 'boom',
      outcome: 'failed',
      error: { message: 'kaboom' },
    })
    expect(
      (await w.request('hello', '/api/hello/again', { params: { name: 'again' } })).body.toString(),
    ).toBe('Hello, again!')
    await w.waitFor((m) => m.type === 'invocation-end' && m.functionName === 'hello')
    const starts = w.messages.filter((m) => m.type === 'invocation-start')
    expect(starts[0]).toMatchObject({ invocationId: 'inv-1' })
    expect(starts[1]!.type === 'invocation-start' && starts[1]!.invocationId).toMatch(
      /^[0-9a-f-]{36}$/,
    ) // made by the worker
    await w.process.stop()
  })

  it('with THAW_INVOCATION_EVENTS=failed, tells only failed invocations (their end, with the error)', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'), {
      env: { THAW_INVOCATION_EVENTS: 'failed' },
    })
    await w.ready
    const ok = await w.request('hello', '/api/hello/quiet', {
      params: { name: 'quiet' },
      headers: { 'x-ms-invocation-id': 'inv-ok' },
    })
    expect(ok.body.toString()).toBe('Hello, quiet!')
    const res = await w.request('boom', '/api/boom', { headers: { 'x-ms-invocation-id': 'inv-2' } })
    expect(res.status).toBe(500)
    // Messages go out in order: once the failure's end is here, the success's would have been.
    const end = await w.waitFor((m) => m.type === 'invocation-end' && m.invocationId === 'inv-2')
    expect(end).toMatchObject({ outcome: 'failed', error: { message: 'kaboom' } })
    const events = w.messages.filter((m) => m.type.startsWith('invocation-'))
    expect(events).toEqual([end])
    await w.process.stop()
  })

  it.each(['http-buffered', 'http-streaming'])(
    'refuses a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT with 413 (%s)',
    async (app) => {
      const w = await startDirectWorker(join(APPS, app), {
        env: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000' },
      })
      await w.ready
      expect(
        (await w.request('echo', '/api/echo', { method: 'POST', body: Buffer.alloc(1000, 1) }))
          .status,
      ).toBe(200)
      expect(
        (await w.request('echo', '/api/echo', { method: 'POST', body: Buffer.alloc(1001, 1) }))
          .status,
      ).toBe(413)
      await w.process.stop()
    },
  )

  it('runs non-HTTP triggers on demand: a timer with the host TimerInfo, a queue message with extra outputs', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'))
    await w.ready
    const tick = await w.request('tick', '/', { method: 'POST', body: '{}' })
    expect(JSON.parse(tick.body.toString())).toEqual({
      returnValue: { pastDue: false, scheduled: true },
      outputs: {},
    })
    const orders = await w.request('orders', '/', {
      method: 'POST',
      body: JSON.stringify({ input: { id: 7 } }),
    })
    const result = JSON.parse(orders.body.toString())
    expect(result.returnValue).toBe('processed {"id":7}')
    expect(Object.values(result.outputs)).toEqual([{ saw: { id: 7 } }])
    expect((await w.request('orders', '/', { method: 'POST', body: 'not json' })).status).toBe(400)
    await w.process.stop()
  })

  it('on shutdown finishes the request in flight, runs appTerminate hooks and exits 0', async () => {
    const marker = join(await tmpDir(), 'terminated')
    const w = await startDirectWorker(join(APPS, 'modules'), { env: { TERMINATE_MARKER: marker } })
    await w.ready
    const slow = w.request('slow', '/api/slow')
    await w.waitFor((m) => m.type === 'invocation-start')
    w.send({ type: 'shutdown', graceMs: 5000 })
    const res = await slow
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe('slow done')
    expect(await w.process.exited).toBe(0)
    expect(await readFile(marker, 'utf8')).toBe('appTerminate ran')
  })

  it('exits when the host closes the control channel', async () => {
    const w = await startDirectWorker(join(APPS, 'http-buffered'))
    await w.ready
    w.dropControl()
    expect(await w.process.exited).toBe(0)
  })

  it('loads TypeScript sources when started with tsx', async () => {
    const dir = await tmpDir()
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'package.json'), '{"main":"src/*.ts"}')
    await writeFile(
      join(dir, 'src', 'app.ts'),
      "import { app, type HttpRequest } from '@azure/functions'\nconst greet = (r: HttpRequest): string => `ts ${r.method}`\napp.get('ts', { handler: async (r) => ({ body: greet(r) }) })\n",
    )
    // The temporary app finds @azure/functions through NODE_PATH, as a real app would in node_modules.
    const w = await startDirectWorker(dir, {
      nodeArgs: ['--import', import.meta.resolve('tsx')],
      env: { NODE_PATH: resolve(import.meta.dirname, '../../../node_modules') },
    })
    await w.ready
    expect((await w.request('ts', '/api/ts')).body.toString()).toBe('ts GET')
    await w.process.stop()
  })
})
