import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEdgeProcess, type EdgeProcess } from '../support/edge-process.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { cleanupHostLeftovers } from '../support/host-leftovers.ts'
import { freePort, startProcess, type TestProcess } from '../support/processes.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * Issue 16's revisions and rollouts, end to end: a `thaw host` process (runc nodes over images
 * mounted lazily from a `thaw edge` process), driven by the `thaw` CLI as a user would. Images
 * are pushed once (the node base plus an app layer) and deployed by reference.
 */
const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MASTER = 'master-key-of-the-revisions-test'
const KEY = 'an-app-key-of-the-revisions-test'

/** An app that answers with its version and a setting; `secret` needs a key. */
const app = (version: string) => `const { app } = require('@azure/functions')
app.http('hello', { methods: ['GET'], authLevel: 'anonymous',
  handler: async () => ({ body: '${version} ' + (process.env.GREETING ?? 'no greeting') }) })
app.http('secret', { methods: ['GET'], authLevel: 'function', handler: async () => ({ body: 'secret ${version}' }) })
`
/** An app that throws while it is imported: its worker never reports its functions. */
const BROKEN = `console.error('loading the broken app')
throw new Error('boom at import: /home/site/wwwroot/index.js is broken')
`

const skip = sandboxUnavailable || (fuseUnavailable ? 'no /dev/fuse' : false)
const title = skip ? `revisions and rollouts (skipped: ${skip})` : 'revisions and rollouts'

describe.skipIf(skip)(title, { timeout: 180_000 }, () => {
  let edge: EdgeProcess
  let host: TestProcess
  let state: string
  let url: string
  const images: Record<'v1' | 'v2' | 'broken', string> = { v1: '', v2: '', broken: '' }

  /** `thaw <args>` against the test's host: its exit code and output. */
  const thaw = async (...args: string[]) => {
    const env = { ...process.env, THAW_HOST: url, THAW_MASTER_KEY: MASTER }
    const child = spawn(THAW, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const [code] = (await once(child, 'close')) as [number | null]
    return { code, stdout, stderr }
  }
  const deploy = (image: string, ...flags: string[]) =>
    thaw('deploy', '--image', image, '--name', 'greet', '--host', url, ...flags)
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, { headers })
    return { status: res.status, text: await res.text(), headers: res.headers }
  }
  /** Calls /greet/api/hello one after another until `until` settles; every answer. */
  const traffic = async (until: Promise<unknown>) => {
    let done = false
    void until.finally(() => (done = true))
    const answers: string[] = []
    while (!done) {
      const r = await get('/greet/api/hello').catch((e: Error) => ({ status: 0, text: e.message }))
      answers.push(`${r.status} ${r.text}`)
    }
    return answers
  }

  beforeAll(async () => {
    edge = await startEdgeProcess()
    const base = await nodeBase()
    const registry = new URL(edge.url).host
    const push = (tag: string, index: string) =>
      pushAppImage({
        registry,
        repository: 'apps/greet',
        tag,
        base,
        files: {
          'host.json': '{ "version": "2.0" }',
          'package.json': '{ "name": "greet", "main": "index.js" }',
          'index.js': index,
        },
      })
    images.v1 = await push('v1', app('v1'))
    images.v2 = await push('v2', app('v2'))
    images.broken = await push('broken', BROKEN)
    const port = await freePort()
    state = await tmpDir('thaw-revisions-host-')
    const flags = ['--port', String(port), '--edge', edge.url, '--pool', '1', '--state', state]
    host = startProcess(THAW, ['host', ...flags, '--master-key', MASTER])
    await host.waitFor(/listening on/, 120_000)
    url = `http://127.0.0.1:${port}`
  }, 600_000)

  afterAll(async () => {
    await host?.stop(30_000)
    if (state) await cleanupHostLeftovers(state)
    await edge?.process.stop()
  })

  it('deploys revision 1, gated: the host started it before thaw deploy returned, and it lists the functions with their URLs', async () => {
    const out = await deploy(images.v1, '--setting', 'GREETING=hello')
    expect(out.code, out.stderr).toBe(0)
    expect(out.stderr).toContain('Revision 1 of greet is live')
    expect(out.stderr).toContain(
      `    hello - [httpTrigger]\n        Invoke url: ${url}/greet/api/hello\n`,
    )
    expect(out.stderr).toContain(`        Invoke url: ${url}/greet/api/secret\n`)
    // The gate's node serves the first request: it is not a cold start.
    const first = await get('/greet/api/hello')
    expect([first.status, first.text]).toEqual([200, 'v1 hello'])
    expect(first.headers.get('x-thaw-cold-start')).toBeNull()
    const key = await thaw('keys', 'set', 'greet', 'default', KEY)
    expect(key.code, key.stderr).toBe(0)
  })

  it('keeps settings and keys over a redeploy, and fails no request while it rolls out', async () => {
    const deployed = deploy(images.v2)
    const answers = await traffic(deployed)
    const out = await deployed
    expect(out.code, out.stderr).toBe(0)
    expect(out.stderr).toContain('Revision 3 of greet is live') // 2 was the key
    expect(answers.length).toBeGreaterThan(0)
    expect(answers.filter((a) => !/^200 v[12] hello$/.test(a))).toEqual([])
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v2 hello' })
    expect(await get('/greet/api/secret', { 'x-functions-key': KEY })).toMatchObject({
      status: 200,
      text: 'secret v2',
    })
    expect((await get('/greet/api/secret')).status).toBe(401)
    const settings = await thaw('settings', 'list', 'greet')
    expect(settings.stdout).toBe('GREETING=hello\n')
  })

  it('refuses a revision that throws at import: thaw deploy fails with its error and log lines, the old one keeps answering, no request fails', async () => {
    const deployed = deploy(images.broken)
    const answers = await traffic(deployed)
    const out = await deployed
    expect(out.code).not.toBe(0)
    expect(out.stderr).toMatch(
      /revision 4 of greet did not start; revision 3 keeps serving: .*boom at import/,
    )
    expect(out.stderr).toContain('  | loading the broken app')
    expect(out.stderr).not.toMatch(/^\s+at .*\.ts:\d+/m) // the CLI's own stack is not printed
    expect(answers.filter((a) => a !== '200 v2 hello')).toEqual([])
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v2 hello' })
    const shown = await thaw('apps', 'show', 'greet')
    expect(shown.stdout).toMatch(/greet: revision 3,/)
    expect(shown.stdout).toMatch(/ 4 +\S+ +deploy +failed: .*boom at import/)
    expect(shown.stdout).toMatch(/\* +3 +\S+ +deploy /)
  })

  it('rolls back to revision 1 (its image and settings, the current keys), and a second time to the revision before', async () => {
    await thaw('settings', 'set', 'greet', 'GREETING=bonjour')
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v2 bonjour' })
    const back = await thaw('apps', 'rollback', 'greet', '1')
    expect(back.code, back.stderr).toBe(0)
    expect(back.stdout).toMatch(
      /Revision 6 of greet is live \(the image, settings and limits of revision 1\)/,
    )
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v1 hello' })
    expect(await get('/greet/api/secret', { 'x-functions-key': KEY })).toMatchObject({
      text: 'secret v1',
    })
    const again = await thaw('apps', 'rollback', 'greet')
    expect(again.stdout).toMatch(
      /Revision 7 of greet is live \(the image, settings and limits of revision 5\)/,
    )
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v2 bonjour' })
  })

  it("gates a PATCH of the app as a deploy: a new image that throws at import is refused with the node's error and log, and the old revision keeps answering", async () => {
    const patched = fetch(`${url}/admin/apps/greet`, {
      method: 'PATCH',
      headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
      body: JSON.stringify({ image: images.broken }),
    })
    const answers = await traffic(patched)
    const res = await patched
    const body = (await res.json()) as { error: { code: string; message: string; logs: string[] } }
    expect([res.status, body.error.code]).toEqual([422, 'REVISION_FAILED'])
    expect(body.error.message).toMatch(
      /revision 8 of greet did not start; revision 7 keeps serving: .*boom at import/,
    )
    expect(body.error.logs.join('\n')).toContain('loading the broken app')
    expect(answers.filter((a) => a !== '200 v2 bonjour')).toEqual([])
    expect(await get('/greet/api/hello')).toMatchObject({ status: 200, text: 'v2 bonjour' })
    const shown = await thaw('apps', 'show', 'greet')
    expect(shown.stdout).toMatch(/ 8 +\S+ +deploy +failed: .*boom at import/)
  })

  it('backs off a broken app: many requests, at most 2 start attempts; 503 with Retry-After and an invocation id; the error text only to the master key', async () => {
    // Created through POST /admin/apps, which does not gate a new app: it is broken from the start.
    const created = await fetch(`${url}/admin/apps`, {
      method: 'POST',
      headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'broken', image: images.broken }),
    })
    expect(created.status).toBe(201)
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => get('/broken/api/hello')))
    const sequential = []
    for (let i = 0; i < 20; i++) sequential.push(await get('/broken/api/hello'))
    for (const r of [...concurrent, ...sequential]) {
      expect(r.status).toBe(503)
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      const id = r.headers.get('x-ms-invocation-id')
      expect(id).toMatch(/^[0-9a-f-]{36}$/)
      expect(r.text.trimEnd()).toBe(
        `the app could not start; retry in ${r.headers.get('retry-after')} s (invocation ${id})`,
      )
    }
    const attempts = host
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"node start failed') && l.includes('"app":"broken"'))
    expect(attempts.length).toBeGreaterThanOrEqual(1)
    expect(attempts.length).toBeLessThanOrEqual(2)
    // The master key sees why; the host's log has it too.
    const master = await get('/broken/api/hello', { 'x-functions-key': MASTER })
    expect(master.text).toMatch(/boom at import/)
    expect(attempts[0]).toMatch(/boom at import/)
  })

  it('says what is wrong in one line for an unknown app, a bad flag, and an unreachable host', async () => {
    const unknown = await thaw('apps', 'show', 'nope')
    expect([unknown.code, unknown.stderr]).toEqual([
      2,
      'thaw apps: the host answered 404 to GET /admin/apps/nope: APP_NOT_FOUND: no app named "nope"\n',
    ])
    const flag = await thaw('settings', 'list', 'greet', '--nope')
    expect(flag.code).toBe(2)
    expect(flag.stderr.trim().split('\n')).toHaveLength(1)
    const down = await thaw('apps', 'list', '--host', `http://127.0.0.1:${await freePort()}`)
    expect(down.code).toBe(2)
    expect(down.stderr).toMatch(
      /^thaw apps: cannot reach the host at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)[^\n]*\n$/,
    )
  })
})
