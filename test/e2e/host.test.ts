import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../host/os/run-command.ts'
import { silentHostLogger } from '../../host/log/host-logger.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { buildStaticHandler } from '../support/custom-handler.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'
import { createUnpackedImageMounts } from '../support/unpacked-image-mounts.ts'

/** An unmodified @azure/functions v4 app; STREAM=1 (an app setting) turns on HTTP streams. */
const APP = `
const { app } = require('@azure/functions')
const { Readable } = require('node:stream')
const stream = process.env.STREAM === '1'
app.setup({ enableHttpStream: stream })
app.http('hello', { authLevel: 'anonymous', handler: async (req) => ({ body: 'hello ' + (req.query.get('name') ?? 'world') + (stream ? ' streamed' : '') }) })
app.http('slow', { authLevel: 'anonymous', handler: async (req) => { await new Promise((r) => setTimeout(r, Number(req.query.get('ms') ?? 300))); return { body: 'slow done' } } })
app.http('chunks', { authLevel: 'anonymous', handler: async () => ({ body: Readable.from(['a', 'b', 'c'].map((s) => s.repeat(1000))) }) })
app.http('secret', { authLevel: 'function', handler: async () => ({ body: 'secret' }) })
app.http('crash', { authLevel: 'anonymous', handler: async () => { setTimeout(() => process.exit(1), 50); return { body: 'bye' } } })
app.http('inside', { authLevel: 'anonymous', handler: async (req) => {
  const fs = require('node:fs')
  const net = require('node:net')
  const hostPort = Number(req.query.get('port'))
  const reach = await new Promise((r) => { const s = net.connect(hostPort, '127.0.0.1'); s.on('connect', () => { s.destroy(); r(true) }); s.on('error', () => r(false)) })
  fs.writeFileSync('/usr/thaw-probe-' + req.query.get('mark'), 'x')
  const probes = fs.readdirSync('/usr').filter((f) => f.startsWith('thaw-probe-'))
  return { jsonBody: { probes, pids: fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).length, reachHostLoopback: reach, hostState: fs.existsSync('/work'), env: Object.keys(process.env).filter((k) => /KEY|SECRET/i.test(k)) } }
} })
`

const title = sandboxUnavailable ? `host (skipped: ${sandboxUnavailable})` : 'host end to end'

describe.skipIf(sandboxUnavailable)(title, { timeout: 180_000 }, () => {
  let registry: TestRegistry
  let host: RunningHost
  let image: string
  let unpacked: string
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${host.url}/admin${path}`, {
      ...init,
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json', ...init.headers },
    })
  const nodesOf = async (app: string) => {
    const body = (await (await admin(`/apps/${app}`)).json()) as { nodes: { nodes: { served: number }[] } | null }
    return body.nodes?.nodes ?? []
  }
  const createApp = async (body: Record<string, unknown>) => {
    const res = await admin('/apps', { method: 'POST', body: JSON.stringify({ image, ...body }) })
    expect(res.status, await res.clone().text()).toBe(201)
  }

  beforeAll(async () => {
    registry = await startDistribution()
    const base = await nodeBase()
    image = await pushAppImage({ registry: registry.address, repository: 'apps/hello', tag: 'v1', base, files: {
      'host.json': '{ "version": "2.0" }',
      'package.json': '{ "name": "hello", "main": "index.js" }',
      'index.js': APP,
    } })
    const state = await tmpDir('thaw-host-')
    unpacked = await tmpDir('thaw-unpacked-')
    host = await startHost({
      stateDir: state,
      port: 0,
      warm: 1,
      mounts: createUnpackedImageMounts(unpacked),
      logger: silentHostLogger,
    })
  }, 600_000)
  afterAll(async () => {
    await host?.close()
    await registry?.stop()
  })

  it('answers the first request of a new app with a cold start and its breakdown header', async () => {
    await createApp({ name: 'hello' })
    const res = await fetch(`${host.url}/hello/api/hello?name=thaw`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('hello thaw')
    expect(res.headers.get('x-thaw-cold-start')).toMatch(/total/)
    const warm = await fetch(`${host.url}/hello/api/hello`)
    expect(await warm.text()).toBe('hello world')
    expect(warm.headers.get('x-thaw-cold-start')).toBeNull()
  })

  it('addresses apps by host name as well as by path', async () => {
    const port = new URL(host.url).port
    // fetch() sets Host itself; node:http sends the one given.
    const text = await new Promise<string>((resolve, reject) => {
      const req = request(`${host.url}/api/hello`, { headers: { host: `hello.localhost:${port}` } }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve(body))
      })
      req.on('error', reject)
      req.end()
    })
    expect(text).toBe('hello world')
  })

  it('streams responses of an app with HTTP streams on (same image, app setting)', async () => {
    await createApp({ name: 'streamer', settings: { STREAM: '1' } })
    expect(await (await fetch(`${host.url}/streamer/api/hello`)).text()).toBe('hello world streamed')
    const res = await fetch(`${host.url}/streamer/api/chunks`)
    expect(await res.text()).toBe('a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000))
  })

  it('serves many parallel requests to a cold app on at most maxNodes nodes, all correct', async () => {
    await createApp({ name: 'burst', limits: { maxNodes: 2, concurrency: 4, maxQueue: 100 } })
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => fetch(`${host.url}/burst/api/hello?name=${i}`).then(async (r) => [r.status, await r.text()])),
    )
    expect(answers).toEqual(Array.from({ length: 30 }, (_, i) => [200, `hello ${i}`]))
    const nodes = await nodesOf('burst')
    expect(nodes.length).toBeGreaterThanOrEqual(1)
    expect(nodes.length).toBeLessThanOrEqual(2)
    expect(nodes.reduce((n, node) => n + node.served, 0)).toBe(30)
  })

  it('answers 429 with Retry-After when the queue of an app is full', async () => {
    await createApp({ name: 'tight', limits: { maxNodes: 1, concurrency: 1, maxQueue: 1 } })
    await (await fetch(`${host.url}/tight/api/hello`)).text() // started, so the rest only queues
    const statuses = await Promise.all(
      Array.from({ length: 6 }, () => fetch(`${host.url}/tight/api/slow?ms=1000`).then(async (r) => {
        await r.text()
        return { status: r.status, retry: r.headers.get('retry-after') }
      })),
    )
    expect(statuses.filter((s) => s.status === 200).length).toBe(2) // one running, one queued
    expect(statuses.filter((s) => s.status === 429)).toEqual(Array(4).fill({ status: 429, retry: '1' }))
  })

  it('recycles idle nodes (scale to zero) and cold-starts again afterwards', async () => {
    await createApp({ name: 'idle', limits: { idleTimeoutMs: 300 } })
    await (await fetch(`${host.url}/idle/api/hello`)).text()
    expect(await nodesOf('idle')).toHaveLength(1)
    await waitFor(async () => (await nodesOf('idle')).length === 0)
    const again = await fetch(`${host.url}/idle/api/hello`)
    expect(await again.text()).toBe('hello world')
    expect(again.headers.get('x-thaw-cold-start')).not.toBeNull()
  })

  it('fails in-flight requests with 5xx when a node is killed, and replaces the node', async () => {
    const pids = () => new Set(host.sandbox.nodes().flatMap((n) => (n.process ? [n.process.pid] : [])))
    const before = pids()
    await createApp({ name: 'killed', limits: { maxNodes: 1 } })
    await (await fetch(`${host.url}/killed/api/hello`)).text()
    const started = [...pids()].filter((p) => !before.has(p))
    expect(started).toHaveLength(1)
    const inflight = fetch(`${host.url}/killed/api/slow?ms=5000`)
    await new Promise((r) => setTimeout(r, 300))
    process.kill(started[0]!, 'SIGKILL') // from the host, as the OOM killer or an operator would
    const failed = await inflight
    expect(failed.status).toBeGreaterThanOrEqual(500)
    expect(await failed.text()).toMatch(/node/)
    // The in-flight request fails on its connection; the node leaves the app once its exit is seen.
    await waitFor(async () => (await nodesOf('killed')).length === 0)
    const next = await fetch(`${host.url}/killed/api/hello`)
    expect(await next.text()).toBe('hello world')
    expect(next.headers.get('x-thaw-cold-start')).not.toBeNull()
  })

  it('fails in-flight requests with 5xx when the app exits on its own, and replaces the node', async () => {
    await createApp({ name: 'crashy', limits: { maxNodes: 1 } })
    await (await fetch(`${host.url}/crashy/api/hello`)).text()
    const inflight = fetch(`${host.url}/crashy/api/slow?ms=5000`)
    await new Promise((r) => setTimeout(r, 200))
    expect((await fetch(`${host.url}/crashy/api/crash`)).status).toBe(200)
    expect((await inflight).status).toBeGreaterThanOrEqual(500)
    await waitFor(async () => (await nodesOf('crashy')).length === 0)
    const next = await fetch(`${host.url}/crashy/api/hello`)
    expect(await next.text()).toBe('hello world')
    expect(next.headers.get('x-thaw-cold-start')).not.toBeNull()
  })

  it('opens function-level routes with an app key or the master key only', async () => {
    await createApp({ name: 'keyed', keys: { default: 'k'.repeat(32) } })
    expect((await fetch(`${host.url}/keyed/api/secret`)).status).toBe(401)
    expect((await fetch(`${host.url}/keyed/api/secret?code=wrong`)).status).toBe(401)
    expect(await (await fetch(`${host.url}/keyed/api/secret?code=${'k'.repeat(32)}`)).text()).toBe('secret')
    const master = await fetch(`${host.url}/keyed/api/secret`, { headers: { 'x-functions-key': host.masterKey } })
    expect(await master.text()).toBe('secret')
  })

  it.each([
    // no key at all
    [{}, 401],
    // an app key is not an admin key
    [{ 'x-functions-key': 'k'.repeat(32) }, 401],
  ])('refuses the admin API without the master key (%j → %i)', async (headers, status) => {
    const res = await fetch(`${host.url}/admin/apps`, { headers })
    expect(res.status).toBe(status)
    expect(await res.text()).toMatch(/key/i)
  })

  it.each([
    // not JSON
    ['{', /json/i],
    // name not a DNS label
    [JSON.stringify({ name: 'Bad_Name', image: 'x:5000/a:b' }), /name/],
    // reserved name
    [JSON.stringify({ name: 'admin', image: 'x:5000/a:b' }), /reserved/],
    // image without a registry host
    [JSON.stringify({ name: 'ok', image: 'hello' }), /image/],
    // limits of the wrong type
    [JSON.stringify({ name: 'ok', image: 'x:5000/a:b', limits: { maxNodes: 'many' } }), /maxNodes/],
  ])('refuses bad admin input %s with 400 and says why', async (body, message) => {
    const res = await admin('/apps', { method: 'POST', body })
    expect(res.status).toBe(400)
    expect(await res.text()).toMatch(message)
  })

  it('isolates a node: own pid namespace, no host loopback, no host files, private writes', async () => {
    const port = new URL(host.url).port
    const inside = async (app: string) =>
      (await (await fetch(`${host.url}/${app}/api/inside?port=${port}&mark=${app}`)).json()) as Record<string, unknown>
    const hello = await inside('hello')
    expect(hello).toMatchObject({ reachHostLoopback: false, hostState: false, env: [] })
    expect(hello.pids as number).toBeLessThan(10) // its own pid namespace
    expect(hello.probes).toEqual(['thaw-probe-hello'])
    // Another node of the same image sees its own writes only (per-node overlay upper), not hello's.
    expect((await inside('streamer')).probes).toEqual(['thaw-probe-streamer'])
    // ...and the image below (the shared read-only lower) has neither.
    const find = await runCommand('find', [unpacked, '-name', 'thaw-probe-*'])
    expect(find.stdout).toBe('')
  })
})

/** Custom-handler e2e needs a C compiler with a static libc to build its handler. */
const noCompiler = sandboxUnavailable || (onPath('gcc') ? false : 'gcc is not installed')
const chTitle = noCompiler ? `host with a custom-handler app (skipped: ${noCompiler})` : 'host with a custom-handler app'

describe.skipIf(noCompiler)(chTitle, { timeout: 180_000 }, () => {
  let registry: TestRegistry
  let host: RunningHost
  const createApp = async (name: string, image: string, settings: Record<string, string> = {}) => {
    const res = await fetch(`${host.url}/admin/apps`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name, image, settings }),
    })
    expect(res.status, await res.clone().text()).toBe(201)
  }
  /** A custom-handler image as `thaw deploy` builds it: the handler as entrypoint, the app folder as WorkingDir. */
  const pushHandlerImage = async (repository: string, o: { executables?: Record<string, string>; entrypoint: string[] }) =>
    pushAppImage({
      registry: registry.address,
      repository,
      tag: 'v1',
      base: await nodeBase(),
      azureFunctions: false,
      executables: o.executables,
      config: { Entrypoint: o.entrypoint, Cmd: [], WorkingDir: '/home/site/wwwroot' },
      files: {
        'host.json': JSON.stringify({ version: '2.0', customHandler: { description: { defaultExecutablePath: 'handler' } } }),
        'hello/function.json': JSON.stringify({ bindings: [
          { type: 'httpTrigger', direction: 'in', name: 'req', authLevel: 'anonymous', methods: ['get'], route: 'hello/{name}' },
          { type: 'http', direction: 'out', name: 'res' },
        ] }),
      },
    })

  beforeAll(async () => {
    registry = await startDistribution()
    host = await startHost({
      stateDir: await tmpDir('thaw-host-'),
      port: 0,
      warm: 0,
      mounts: createUnpackedImageMounts(await tmpDir('thaw-unpacked-')),
      logger: silentHostLogger,
    })
  }, 600_000)
  afterAll(async () => {
    await host?.close()
    await registry?.stop()
  })

  const buildHandler = buildStaticHandler

  it('runs a static C handler from the image entrypoint: route parameters in, the HTTP output binding out', async () => {
    // The argument is a %SETTING% (thaw deploy leaves it for the host): the handler listens on
    // the node's 127.0.0.1 only, as handlers written for Azure may, and is still reached.
    const image = await pushHandlerImage('apps/ch', { executables: { handler: await buildHandler() }, entrypoint: ['/home/site/wwwroot/handler', '%BIND%'] })
    await createApp('ch', image, { BIND: '127.0.0.1' })
    const cold = await fetch(`${host.url}/ch/api/hello/thaw`)
    expect(await cold.text()).toBe('hello thaw')
    expect(cold.status).toBe(201) // the statusCode of Outputs.res
    expect(cold.headers.get('x-handler')).toBe('c')
    expect(cold.headers.get('x-thaw-cold-start')).toMatch(/total/)
    const warm = await fetch(`${host.url}/ch/api/hello/world`)
    expect([warm.status, await warm.text(), warm.headers.get('x-thaw-cold-start')]).toEqual([201, 'hello world', null])
    // Routing is the front door's, from function.json: the route and its methods.
    expect((await fetch(`${host.url}/ch/api/hello`)).status).toBe(404)
    expect((await fetch(`${host.url}/ch/api/hello/thaw`, { method: 'POST', body: 'x' })).status).toBe(405)
  })

  it('reaches a handler that listens on all addresses too', async () => {
    const image = await pushHandlerImage('apps/ch-any', { executables: { handler: await buildHandler() }, entrypoint: ['/home/site/wwwroot/handler'] })
    await createApp('ch-any', image)
    const res = await fetch(`${host.url}/ch-any/api/hello/everyone`)
    expect([res.status, await res.text()]).toEqual([201, 'hello everyone'])
  })

  it('answers 503 with the handler\'s own words, to the master key only, when it exits before it is ready', async () => {
    const image = await pushHandlerImage('apps/broken', { entrypoint: ['/bin/sh', '-c', 'echo "no port for me" >&2; exit 3'] })
    await createApp('broken', image)
    const res = await fetch(`${host.url}/broken/api/hello/thaw`, { headers: { 'x-functions-key': host.masterKey } })
    expect(res.status).toBe(503)
    expect(await res.text()).toMatch(/no port for me/)
    const anonymous = await fetch(`${host.url}/broken/api/hello/thaw`)
    expect(anonymous.status).toBe(503)
    expect(await anonymous.text()).not.toMatch(/no port for me/)
  })
})

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, tool)))
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}
