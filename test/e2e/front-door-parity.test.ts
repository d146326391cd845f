import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRunner, type Runner } from '../../host/local/index.ts'
import type { HostLogger } from '../../host/log/host-logger.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { makeApp } from '../support/function-app.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'
import { createUnpackedImageMounts } from '../support/unpacked-image-mounts.ts'

/**
 * `thaw start` and the host answer the same requests the same way: one request pipeline
 * (host/front-door/request-pipeline.ts). The same app, settings and keys run in both: locally
 * from its folder, on the host from an image on a real runc node.
 */
const FILES = {
  'host.json': JSON.stringify({
    version: '2.0',
    extensions: { http: { customHeaders: { 'x-custom': 'from host.json' } } },
  }),
  'package.json': '{ "name": "parity", "main": "index.js" }',
  'index.js': `
const { app } = require('@azure/functions')
app.http('hello', { methods: ['GET', 'POST'], authLevel: 'anonymous', handler: async () => ({ body: 'hello' }) })
app.http('off', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'off ran' }) })
app.http('secret', { methods: ['GET'], authLevel: 'function', handler: async () => ({ body: 'secret' }) })
app.http('owner', { methods: ['GET'], authLevel: 'admin', handler: async () => ({ body: 'owner' }) })
`,
}
const SETTINGS = {
  WEBSITE_CORS_ALLOWED_ORIGINS: 'https://a.example',
  'AzureWebJobs.off.Disabled': 'true',
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000',
}
const MASTER = 'master-key-of-the-parity-test'
const HOST_KEY = 'host-key-of-the-parity-test'

/** [what, method, path, headers, body]: each row is sent to both doors. */
const TABLE: [string, string, string, Record<string, string>, string?][] = [
  ['a function', 'GET', '/api/hello', {}],
  [
    'a CORS preflight from an allowed origin',
    'OPTIONS',
    '/api/hello',
    { origin: 'https://a.example', 'access-control-request-method': 'POST' },
  ],
  [
    'a simple CORS request from an allowed origin',
    'GET',
    '/api/hello',
    { origin: 'https://a.example' },
  ],
  ['a CORS request from another origin', 'GET', '/api/hello', { origin: 'https://b.example' }],
  [
    'a body over the limit',
    'POST',
    '/api/hello',
    { 'content-type': 'text/plain' },
    'x'.repeat(2000),
  ],
  [
    'a body under the limit',
    'POST',
    '/api/hello',
    { 'content-type': 'text/plain' },
    'x'.repeat(500),
  ],
  ['a disabled function', 'GET', '/api/off', {}],
  ['a disabled function with the master key', 'GET', '/api/off', { 'x-functions-key': MASTER }],
  ['an unknown route', 'GET', '/api/nope', {}],
  ['a method the function does not take', 'DELETE', '/api/hello', {}],
  ['a function-level function without a key', 'GET', '/api/secret', {}],
  [
    'a function-level function with a wrong key',
    'GET',
    '/api/secret',
    { 'x-functions-key': 'not-a-key-of-this-app' },
  ],
  ['a function-level function with the host key', 'GET', `/api/secret?code=${HOST_KEY}`, {}],
  [
    'an admin-level function with the host key',
    'GET',
    '/api/owner',
    { 'x-functions-key': HOST_KEY },
  ],
  [
    'an admin-level function with the master key',
    'GET',
    '/api/owner',
    { 'x-functions-key': MASTER },
  ],
  ['the root page', 'GET', '/', {}],
]

/** What is compared of an answer: the status, the headers the pipeline owns, and the body. */
const COMPARED = [
  'access-control-allow-origin',
  'access-control-allow-methods',
  'allow',
  'x-custom',
  'content-type',
  'connection',
]

async function ask(origin: string, row: (typeof TABLE)[number]) {
  const [, method, path, headers, body] = row
  const res = await fetch(`${origin}${path}`, { method, headers, body })
  const text = (await res.text()).replaceAll(origin, '<origin>')
  const picked = Object.fromEntries(COMPARED.map((h) => [h, res.headers.get(h)]))
  return { status: res.status, headers: picked, body: text }
}

const title = sandboxUnavailable
  ? `thaw start and the host answer alike (skipped: ${sandboxUnavailable})`
  : 'thaw start and the host answer alike'

describe.skipIf(sandboxUnavailable)(title, { timeout: 240_000 }, () => {
  let registry: TestRegistry
  let host: RunningHost
  let runner: Runner
  let local: string
  const logs: string[] = []
  const logger: HostLogger = { log: (_level, msg) => void logs.push(msg) }

  beforeAll(async () => {
    const dir = await makeApp({
      ...FILES,
      'local.settings.json': JSON.stringify({ IsEncrypted: false, Values: SETTINGS }),
    })
    runner = createRunner({
      scriptRoot: dir,
      port: 0,
      watch: false,
      keys: { master: MASTER, host: { default: HOST_KEY } },
    })
    local = (await runner.ready).origin
    registry = await startDistribution()
    const image = await pushAppImage({
      registry: registry.address,
      repository: 'apps/parity',
      tag: 'v1',
      base: await nodeBase(),
      files: FILES,
    })
    host = await startHost({
      stateDir: await tmpDir('thaw-host-'),
      port: 0,
      warm: 1,
      masterKey: MASTER,
      mounts: createUnpackedImageMounts(await tmpDir('thaw-unpacked-')),
      logger,
    })
    const res = await fetch(`${host.url}/admin/apps`, {
      method: 'POST',
      headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'parity',
        image,
        settings: SETTINGS,
        keys: { default: HOST_KEY },
      }),
    })
    expect(res.status, await res.clone().text()).toBe(201)
  }, 600_000)

  afterAll(async () => {
    await runner?.dispose()
    await host?.close()
    await registry?.stop()
  })

  it('answers every request of the table the same way, through both doors', async () => {
    // The host routes a new image's first request after its cold start: the table starts cold.
    const app = `${host.url}/parity`
    const rows: {
      what: string
      local: Awaited<ReturnType<typeof ask>>
      host: Awaited<ReturnType<typeof ask>>
    }[] = []
    for (const row of TABLE) {
      const [a, b] = [await ask(local, row), await ask(app, row)]
      rows.push({ what: row[0], local: a, host: b })
    }
    for (const r of rows) expect({ what: r.what, ...r.host }).toEqual({ what: r.what, ...r.local })
    // And the answers are the ones Azure's host gives (spot checks of what both agreed on).
    const by = (what: string) => rows.find((r) => r.what === what)!.local
    expect(by('a function')).toMatchObject({
      status: 200,
      body: 'hello',
      headers: { 'x-custom': 'from host.json' },
    })
    expect(by('a CORS preflight from an allowed origin')).toMatchObject({
      status: 204,
      headers: {
        'access-control-allow-origin': 'https://a.example',
        'access-control-allow-methods': 'POST',
      },
    })
    expect(
      by('a simple CORS request from an allowed origin').headers['access-control-allow-origin'],
    ).toBe('https://a.example')
    expect(
      by('a CORS request from another origin').headers['access-control-allow-origin'],
    ).toBeNull()
    // The rest of the body is read and dropped (a lingering close), so no `Connection: close`.
    expect(by('a body over the limit').status).toBe(413)
    expect(by('a body under the limit').status).toBe(200)
    expect(by('a disabled function').status).toBe(404)
    expect(by('a disabled function with the master key')).toMatchObject({
      status: 200,
      body: 'off ran',
    })
    expect(by('an unknown route')).toMatchObject({
      status: 404,
      body: 'no function answers GET <origin>/api/nope\n',
    })
    expect(by('a method the function does not take')).toMatchObject({
      status: 405,
      headers: { allow: 'GET, POST' },
    })
    expect(
      rows.filter((r) => /function-level|admin-level/.test(r.what)).map((r) => r.local.status),
    ).toEqual([401, 401, 200, 401, 200])
    expect(by('the root page')).toMatchObject({
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
    })
  })

  it('says where the apps are, with the port, for a request that names none', async () => {
    const res = await fetch(`${host.url}/`)
    const port = new URL(host.url).port
    expect(res.status).toBe(404)
    expect(await res.text()).toBe(
      `no app here: use http://<app>.localhost:${port}/... or http://127.0.0.1:${port}/<app>/...\n`,
    )
  })
})
