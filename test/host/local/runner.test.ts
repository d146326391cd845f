import { createServer } from 'node:net'
import { once } from 'node:events'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRunner, type Runner, type RunnerOptions } from '../../../host/local/index.ts'
import { makeApp } from '../../support/function-app.ts'

const BUFFERED = resolve(import.meta.dirname, '../../fixtures/apps/http-buffered')

/** An app whose function answers the values of the environment variables named in ?names=. */
const ENV_APP = {
  'package.json': '{ "main": "index.js" }',
  'index.js': `const { app } = require('@azure/functions')
app.get('env', { handler: async (r) => ({ jsonBody: Object.fromEntries(r.query.get('names').split(',').map((n) => [n, process.env[n] ?? null])) }) })
app.timer('broken', { schedule: '0 0 * * * *', handler: async () => { throw new Error('timer broke') } })
`,
}

describe('createRunner options', () => {
  // Options refused at once, each with why: the caller's fault.
  const bad: [string, unknown][] = [
    ['no scriptRoot', {}],
    ['an empty scriptRoot', { scriptRoot: '' }],
    ['a negative port', { scriptRoot: 'x', port: -1 }],
    ['an unknown option', { scriptRoot: 'x', prot: 1 }],
    ['an empty master key', { scriptRoot: 'x', keys: { master: '' } }],
    ['settings that are not strings', { scriptRoot: 'x', settings: { A: 1 } }],
  ]
  it.each(bad)('refuses %s', (_why, options) => {
    expect(() => createRunner(options as RunnerOptions)).toThrow(
      expect.objectContaining({ code: 'OPTIONS_INVALID', fault: 'user' }),
    )
  })
})

describe('runner start failures', () => {
  // Apps that cannot start, and the error code that says so.
  const broken: [string, Record<string, string> | undefined, string, 'user' | 'system'][] = [
    ['a folder without host.json', undefined, 'HOST_JSON_MISSING', 'user'],
    [
      'host.json without version 2.0',
      { 'host.json': '{ "version": "1.0" }' },
      'CONFIG_INVALID',
      'user',
    ],
    ['host.json that is not JSON', { 'host.json': '{ version' }, 'CONFIG_INVALID', 'user'],
    [
      'an encrypted local.settings.json',
      { 'local.settings.json': '{ "IsEncrypted": true, "Values": {} }' },
      'CONFIG_INVALID',
      'user',
    ],
    [
      'an entry point that throws',
      { 'package.json': '{ "main": "index.js" }', 'index.js': 'throw new Error("nope")' },
      'WORKER_START_FAILED',
      'user',
    ],
  ]
  it.each(broken)('rejects ready for %s', async (_why, files, code, fault) => {
    const dir = files
      ? await makeApp(files)
      : await makeApp({}).then(async (d) => {
          const { rm } = await import('node:fs/promises')
          await rm(join(d, 'host.json'))
          return d
        })
    const runner = createRunner({ scriptRoot: dir })
    await expect(runner.ready).rejects.toMatchObject({ code, fault })
    await runner.dispose()
  })

  it('says which port is taken', async () => {
    const blocker = createServer().listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    const port = (blocker.address() as { port: number }).port
    const runner = createRunner({ scriptRoot: BUFFERED, port })
    await expect(runner.ready).rejects.toMatchObject({
      code: 'PORT_IN_USE',
      message: expect.stringContaining(`Port ${port} is unavailable`),
    })
    await runner.dispose()
    blocker.close()
  })
})

describe('app settings', () => {
  it('takes local.settings.json Values, lets the real environment win, and explicit settings win over both', async () => {
    process.env.THAW_TEST_REAL = 'from the environment'
    const dir = await makeApp({
      ...ENV_APP,
      'local.settings.json': JSON.stringify({
        IsEncrypted: false,
        Values: { FROM_FILE: 'file', THAW_TEST_REAL: 'file loses', NUMBER: 7, OVERRIDDEN: 'file' },
        ConnectionStrings: { Db: 'Server=x' },
      }),
    })
    const events: string[] = []
    const runner = createRunner({
      scriptRoot: dir,
      settings: { OVERRIDDEN: 'explicit' },
      logger: (e) => e.type === 'note' && events.push(e.message),
    })
    try {
      const names =
        'FROM_FILE,THAW_TEST_REAL,NUMBER,OVERRIDDEN,ConnectionStrings:Db,AZURE_FUNCTIONS_ENVIRONMENT,THAW_CONTROL'
      const res = await runner.dispatchFetch(`/api/env?names=${names}`)
      expect(await res.json()).toEqual({
        FROM_FILE: 'file',
        THAW_TEST_REAL: 'from the environment',
        NUMBER: '7',
        OVERRIDDEN: 'explicit',
        'ConnectionStrings:Db': 'Server=x',
        AZURE_FUNCTIONS_ENVIRONMENT: 'Development',
        THAW_CONTROL: expect.stringMatching(/\.ctl$/), // the worker's own, not leaked from outside
      })
      expect(events).toContain(
        "Skipping 'THAW_TEST_REAL' from local settings as it's already defined in current environment variables.",
      )
    } finally {
      delete process.env.THAW_TEST_REAL
      await runner.dispose()
    }
  })
})

describe('the runner as a front door', () => {
  let runner: Runner
  const keys = {
    master: 'MASTER',
    host: { default: 'HOSTKEY' },
    functions: { secret: { default: 'FNKEY' } },
  }

  const ended: string[] = []

  beforeAll(async () => {
    runner = createRunner({
      scriptRoot: BUFFERED,
      keys,
      cors: ['https://app.example'],
      logger: (e) => void (e.type === 'invocation-end' && ended.push(`${e.functionName} ${e.outcome}`)),
    })
    await runner.ready
  })
  afterAll(() => runner.dispose())

  // [what, path, key, expected status]
  const table: [string, string, string | undefined, number][] = [
    ['anonymous function without a key', '/api/hello', undefined, 200],
    ['function level without a key', '/api/secret', undefined, 401],
    ['function level with a wrong key', '/api/secret', 'WRONG', 401],
    ["function level with the function's key", '/api/secret', 'FNKEY', 200],
    ['function level with a host key', '/api/secret', 'HOSTKEY', 200],
    ['function level with the master key', '/api/secret', 'MASTER', 200],
    ['admin level with a host key', '/api/manage', 'HOSTKEY', 401],
    ['admin level with the master key', '/api/manage', 'MASTER', 200],
  ]
  it.each(table)('keys: %s → %i', async (_what, path, key, status) => {
    const viaHeader = await runner.dispatchFetch(path, {
      headers: key ? { 'x-functions-key': key } : {},
    })
    expect(viaHeader.status).toBe(status)
    const viaQuery = await runner.dispatchFetch(key ? `${path}?code=${key}` : path)
    expect(viaQuery.status).toBe(status)
  })

  it('guards the admin API with the master key and runs functions from it with 202', async () => {
    expect(
      (await runner.dispatchFetch('/admin/functions/tick', { method: 'POST', body: '{}' })).status,
    ).toBe(401)
    const res = await runner.dispatchFetch('/admin/functions/tick', {
      method: 'POST',
      body: '{"input":null}',
      headers: { 'x-functions-key': 'MASTER' },
    })
    expect(res.status).toBe(202)
    while (!ended.includes('tick succeeded')) await new Promise((r) => setTimeout(r, 10)) // it ran
    const list = await runner.dispatchFetch('/admin/functions?code=MASTER')
    expect(((await list.json()) as { name: string }[]).map((f) => f.name)).toContain('tick')
    expect((await runner.dispatchFetch('/admin/host/ping')).status).toBe(200)
  })

  it('answers CORS preflights for allowed origins only', async () => {
    const pre = await runner.dispatchFetch('/api/hello', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST')
    const simple = await runner.dispatchFetch('/api/hello', {
      headers: { origin: 'https://app.example' },
    })
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://app.example')
    const other = await runner.dispatchFetch('/api/hello', {
      headers: { origin: 'https://evil.example' },
    })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('answers 404 for unknown routes, 405 with Allow for a wrong method, and the homepage at /', async () => {
    expect((await runner.dispatchFetch('/api/nope')).status).toBe(404)
    const wrong = await runner.dispatchFetch('/api/items/1', { method: 'POST' })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get('allow')).toBe('DELETE, GET, PUT')
    const home = await runner.dispatchFetch('/')
    expect(home.status).toBe(200)
    expect(await home.text()).toContain('up and running')
  })

  it('invokes non-HTTP functions and reports unknown ones', async () => {
    expect(await runner.invoke('tick')).toEqual({
      returnValue: { pastDue: false, scheduled: true },
      outputs: {},
    })
    await expect(runner.invoke('nope')).rejects.toMatchObject({
      code: 'FUNCTION_NOT_FOUND',
      fault: 'user',
    })
  })
})

describe('app configuration', () => {
  it('applies host.json routePrefix and customHeaders, the functions allow-list, and disabled functions', async () => {
    const dir = await makeApp({
      ...ENV_APP,
      'host.json': JSON.stringify({
        version: '2.0',
        extensions: { http: { routePrefix: '', customHeaders: { 'x-frame-options': 'DENY' } } },
      }),
    })
    const runner = createRunner({
      scriptRoot: dir,
      settings: { 'AzureWebJobs.broken.Disabled': 'true' },
    })
    try {
      const res = await runner.dispatchFetch('/env?names=A')
      expect(res.status).toBe(200)
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect((await runner.dispatchFetch('/api/env?names=A')).status).toBe(404)
      await expect(runner.invoke('broken')).rejects.toMatchObject({
        code: 'FUNCTION_FAILED',
        message: expect.stringContaining('timer broke'),
      })
    } finally {
      await runner.dispose()
    }
    const only = createRunner({ scriptRoot: BUFFERED, functions: ['hello'] })
    try {
      await only.ready
      expect(only.functions().map((f) => f.name)).toEqual(['hello'])
      expect((await only.dispatchFetch('/api/items/1')).status).toBe(404)
    } finally {
      await only.dispose()
    }
  })

  it('answers 404 for a function disabled by AzureWebJobs.<name>.Disabled', async () => {
    const runner = createRunner({
      scriptRoot: BUFFERED,
      settings: { 'AzureWebJobs.hello.Disabled': 'true' },
    })
    try {
      expect((await runner.dispatchFetch('/api/hello')).status).toBe(404)
      expect((await runner.dispatchFetch('/api/nothing')).status).toBe(200)
    } finally {
      await runner.dispose()
    }
  })

  it('refuses bodies over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT with 413 before the function runs', async () => {
    const runner = createRunner({
      scriptRoot: BUFFERED,
      settings: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '100' },
    })
    try {
      expect(
        (await runner.dispatchFetch('/api/echo', { method: 'POST', body: 'x'.repeat(100) })).status,
      ).toBe(200)
      expect(
        (await runner.dispatchFetch('/api/echo', { method: 'POST', body: 'x'.repeat(101) })).status,
      ).toBe(413)
      // Chunked, no Content-Length: counted as it comes.
      const chunked = new ReadableStream({
        start(c) {
          for (let i = 0; i < 3; i++) c.enqueue(new TextEncoder().encode('x'.repeat(40)))
          c.close()
        },
      })
      const init = { method: 'POST', body: chunked, duplex: 'half' } as RequestInit
      expect((await runner.dispatchFetch('/api/echo', init)).status).toBe(413)
    } finally {
      await runner.dispose()
    }
  })

  it('runs TypeScript sources when package.json#main names the build output', async () => {
    const dir = await makeApp({
      'package.json': '{ "main": "dist/src/functions/*.js" }',
      'tsconfig.json':
        '{ // comments are fine\n "compilerOptions": { "outDir": "dist", "rootDir": "." }, }',
      'src/functions/typed.ts': `import { app, type HttpRequest } from '@azure/functions'
const shout = (r: HttpRequest): string => (r.query.get('w') ?? '').toUpperCase()
app.get('typed', { handler: async (r) => ({ body: shout(r) }) })
`,
    })
    const runner = createRunner({ scriptRoot: dir })
    try {
      expect(await (await runner.dispatchFetch('/api/typed?w=hey')).text()).toBe('HEY')
    } finally {
      await runner.dispose()
    }
  })
})

describe('dispose', () => {
  it('stops the worker process and is idempotent', async () => {
    const generations: number[] = []
    const runner = createRunner({
      scriptRoot: BUFFERED,
      logger: (e) => {
        if (e.type === 'generation-ready') generations.push(e.generation)
      },
    })
    await runner.ready
    const served = runner.served()!
    expect(served.generation.kind).toBe('node')
    await Promise.all([runner.dispose(), runner.dispose()])
    await served.generation.exited
    await expect(runner.dispatchFetch('/api/hello')).rejects.toThrow()
    expect(generations).toEqual([1])
  })
})
