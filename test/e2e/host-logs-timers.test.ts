import { request } from 'node:http'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentHostLogger } from '../../host/log/host-logger.ts'
import type { LogRecord } from '../../host/logs/log-record.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { startProcess } from '../support/processes.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'
import { createUnpackedImageMounts } from '../support/unpacked-image-mounts.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

/**
 * An unmodified @azure/functions v4 app: one HTTP function logging at every level, one that
 * throws, a timer every second (saying whether it was past due), a yearly timer run by hand.
 */
const APP = `
const { app } = require('@azure/functions')
app.http('levels', { authLevel: 'anonymous', handler: async (req, context) => {
  context.trace('at-trace'); context.debug('at-debug'); context.info('at-info'); context.warn('at-warn'); context.error('at-error')
  console.log('from-stdout')
  return { body: 'logged' }
} })
app.http('boom', { authLevel: 'anonymous', handler: async () => { throw new Error('boom-marker') } })
app.timer('tick', { schedule: '*/1 * * * * *', handler: async (timer, context) => { context.log('tick pastDue=' + timer.isPastDue) } })
app.timer('yearly', { schedule: '0 0 0 1 1 *', handler: async (timer, context) => { context.warn('yearly pastDue=' + timer.isPastDue) } })
`

const title = sandboxUnavailable
  ? `host logs and timers (skipped: ${sandboxUnavailable})`
  : 'host logs and timers'

describe.skipIf(sandboxUnavailable)(title, { timeout: 180_000 }, () => {
  let registry: TestRegistry
  let host: RunningHost
  let image: string
  let stateDir: string
  let unpacked: string
  const start = async () =>
    startHost({
      stateDir,
      port: 0,
      warm: 1,
      syncTriggers: true,
      mounts: createUnpackedImageMounts(unpacked),
      logger: silentHostLogger,
    })
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${host.url}/admin${path}`, {
      ...init,
      headers: {
        'x-functions-key': host.masterKey,
        'content-type': 'application/json',
        ...init.headers,
      },
    })
  const records = async (app: string): Promise<LogRecord[]> =>
    ((await (await admin(`/apps/${app}/logs`)).json()) as { records: LogRecord[] }).records
  /** Polls the app's log until `test` holds (the test's timeout is the deadline). */
  const until = async (app: string, test: (r: LogRecord[]) => boolean): Promise<LogRecord[]> => {
    for (;;) {
      const r = await records(app)
      if (test(r)) return r
      await new Promise((ok) => setTimeout(ok, 200))
    }
  }
  const createApp = async (name: string) => {
    const res = await admin('/apps', { method: 'POST', body: JSON.stringify({ name, image }) })
    expect(res.status, await res.clone().text()).toBe(201)
  }

  beforeAll(async () => {
    registry = await startDistribution()
    image = await pushAppImage({
      registry: registry.address,
      repository: 'apps/logs',
      tag: 'v1',
      base: await nodeBase(),
      files: {
        'host.json': '{ "version": "2.0" }',
        'package.json': '{ "name": "logs", "main": "index.js" }',
        'index.js': APP,
      },
    })
    stateDir = await tmpDir('thaw-host-')
    unpacked = await tmpDir('thaw-unpacked-')
    host = await start()
    await createApp('logs')
  }, 600_000)
  afterAll(async () => {
    await host?.close()
    await registry?.stop()
  })

  it("streams an invocation's log lines to thaw logs --follow, each at the level the function used", async () => {
    const cli = startProcess(THAW, [
      'logs',
      'logs',
      '--follow',
      '--json',
      '--host',
      host.url,
      '--master-key',
      host.masterKey,
    ])
    const res = await fetch(`${host.url}/logs/api/levels`)
    expect([res.status, await res.text()]).toEqual([200, 'logged'])
    await cli.waitFor(/at-error/, 60_000)
    await cli.waitFor(/from-stdout/, 60_000)
    await cli.stop()
    const lines = cli
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogRecord)
    const byMessage = new Map(lines.map((r) => [r.message, r]))
    for (const level of ['trace', 'debug', 'info', 'warn', 'error'] as const) {
      expect(byMessage.get(`at-${level}`), level).toMatchObject({
        level,
        function: 'levels',
        source: 'user',
        app: 'logs',
      })
    }
    const ids = new Set(['trace', 'error'].map((l) => byMessage.get(`at-${l}`)?.invocationId))
    expect(ids.size).toBe(1) // one invocation
    expect(byMessage.get('from-stdout')).toMatchObject({ level: 'info', source: 'stdout' })
    expect(byMessage.get('at-info')?.node).toMatch(/^logs-/)
    expect(byMessage.get('at-info')?.revision).toBe(1)

    // The same over server-sent events, from a record number on.
    const from = byMessage.get('at-trace')!.seq - 1
    const sse = await admin(`/apps/logs/logs?follow=1&since=seq:${from}`, {
      headers: { accept: 'text/event-stream' },
    })
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = sse.body!.getReader()
    let text = ''
    while (!text.includes('at-error')) text += new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    expect(text).toMatch(
      new RegExp(`^id: ${from + 1}\nevent: log\ndata: \\{.*"message":"at-trace"`),
    )
  })

  it('logs a failed invocation with its stack; the caller gets a bare 500', async () => {
    const res = await fetch(`${host.url}/logs/api/boom`)
    expect([res.status, await res.text()]).toEqual([500, ''])
    const logged = await until('logs', (r) => r.some((x) => x.message.includes('boom-marker')))
    const failure = logged.find((x) => x.message.includes('boom-marker'))!
    expect(failure).toMatchObject({ level: 'error', function: 'boom', source: 'host' })
    expect(failure.message).toMatch(/Error: boom-marker\n\s+at /) // with the stack
    const { invocations } = (await (await admin('/invocations?app=logs')).json()) as {
      invocations: {
        id: string
        function: string
        status: number
        outcome: string
        cold: boolean
      }[]
    }
    expect(invocations.find((i) => i.id === failure.invocationId)).toMatchObject({
      function: 'boom',
      status: 500,
      outcome: 'failed',
    })
    expect(invocations.find((i) => i.function === 'levels')).toMatchObject({
      status: 200,
      outcome: 'succeeded',
    })
  })

  it('fires a one-second timer, cold-starting the app when it has no node', async () => {
    const first = await until('logs', (r) => r.some((x) => x.message === 'tick pastDue=false'))
    const node = first.find((x) => x.message === 'tick pastDue=false')!.node
    expect((await admin('/apps/logs/drain', { method: 'POST' })).status).toBe(200)
    // A later tick runs on a new node: the timer started one.
    const after = await until('logs', (r) =>
      r.some((x) => x.message.startsWith('tick') && x.node !== node),
    )
    expect(after.find((x) => x.message.startsWith('tick') && x.node !== node)?.function).toBe(
      'tick',
    )
    const { invocations } = (await (await admin('/invocations?app=logs')).json()) as {
      invocations: { trigger: string; cold: boolean }[]
    }
    expect(invocations).toContainEqual(expect.objectContaining({ trigger: 'timer', cold: true }))
  })

  it("fires the timer of an app created and never requested (trigger sync), its first run the node's first", async () => {
    await createApp('quiet')
    const ticked = await until('quiet', (r) => r.some((x) => x.message === 'tick pastDue=false'))
    const node = ticked.find((x) => x.message === 'tick pastDue=false')!.node
    const { invocations } = (await (await admin('/invocations?app=quiet')).json()) as {
      invocations: { trigger: string; node: string; cold: boolean }[]
    }
    // The sync's node took no slot: the first timer run on it was its first (`cold` in the
    // recent invocations), the run whose end ends the start's recording.
    const first = invocations.findLast((i) => i.node === node)
    expect(first).toMatchObject({ trigger: 'timer', cold: true })
    expect(invocations.filter((i) => i.trigger !== 'timer')).toEqual([])
    expect((await admin('/apps/quiet', { method: 'DELETE' })).status).toBe(204)
  })

  it('runs a non-HTTP function from the admin API (202), also at the Azure path by host name', async () => {
    const res = await admin('/apps/logs/functions/yearly', {
      method: 'POST',
      body: '{"input": null}',
    })
    expect(res.status).toBe(202)
    const { invocationId } = (await res.json()) as { invocationId: string }
    expect(res.headers.get('x-ms-invocation-id')).toBe(invocationId)
    const ran = await until('logs', (r) => r.some((x) => x.invocationId === invocationId))
    expect(ran.find((x) => x.invocationId === invocationId)).toMatchObject({
      message: 'yearly pastDue=false',
      level: 'warn',
    })

    const azure = await new Promise<number>((ok, fail) => {
      const req = request(`${host.url}/admin/functions/yearly`, {
        method: 'POST',
        headers: {
          host: 'logs.localhost',
          'x-functions-key': host.masterKey,
          'content-type': 'application/json',
        },
      })
      req.on('response', (r) => (r.resume(), ok(r.statusCode!)))
      req.on('error', fail)
      req.end('{}')
    })
    expect(azure).toBe(202)
    expect((await admin('/apps/logs/functions/nope', { method: 'POST', body: '{}' })).status).toBe(
      404,
    )
    expect(
      (await fetch(`${host.url}/admin/apps/logs/functions/yearly`, { method: 'POST' })).status,
    ).toBe(401)
  })

  it('fires a timer past due after a restart that missed its occurrence, the log kept over it', async () => {
    const before = await records('logs')
    await host.close()
    // Wait until the stored next occurrence of the one-second timer has passed.
    await new Promise((ok) => setTimeout(ok, 2000))
    host = await start()
    // The app's log outlived the restart (its ring on disk), and goes on numbering after it.
    const kept = await records('logs')
    expect(kept.slice(0, before.length)).toEqual(before)
    expect(kept.map((r) => r.message)).toContain('at-info')
    // The new host's first run is past due. The old host may have logged a tick of its own after
    // `before` was read (the timer runs every second, and a slow machine gives it time before the
    // close), so the test waits for the past-due one rather than taking the first tick logged.
    const after = (r: LogRecord[]) => r.filter((x) => x.seq > before.at(-1)!.seq)
    const logged = await until('logs', (r) => after(r).some((x) => x.message === 'tick pastDue=true'))
    expect(after(logged).map((x) => x.message)).toContain('tick pastDue=true')
  })
})
