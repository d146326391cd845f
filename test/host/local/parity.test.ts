import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRunner, type Runner } from '../../../host/local/index.ts'
import { freePort, startProcess, type TestProcess } from '../../support/processes.ts'
import { startDirectWorker, type DirectWorker } from '../../support/worker.ts'

const ROOT = resolve(import.meta.dirname, '../../..')
const APPS = join(ROOT, 'test/fixtures/apps')

/** One request, with the route params a host would have matched (the worker alone needs them). */
interface Case {
  name: string
  fn: string
  method?: string
  path: string
  params?: Record<string, string | null>
  headers?: Record<string, string>
  body?: string | Buffer
  expect: (a: Answer) => void
}

/** An answer with the per-connection details (date, framing, invocation id) left out. */
interface Answer {
  status: number
  headers: [string, string][]
  body: Buffer
}

const BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
const header = (a: Answer, name: string) => a.headers.filter(([k]) => k === name).map(([, v]) => v)

const CASES: Case[] = [
  {
    name: 'route parameter',
    fn: 'hello',
    path: '/api/hello/Bob',
    params: { name: 'Bob' },
    expect: (a) => {
      expect(a.status).toBe(200)
      expect(a.body.toString()).toBe('Hello, Bob!')
      expect(header(a, 'content-type')).toEqual(['text/plain;charset=UTF-8'])
    },
  },
  {
    name: 'absent optional parameter and a text body',
    fn: 'hello',
    method: 'POST',
    path: '/api/hello',
    params: { name: null },
    body: 'Alice',
    expect: (a) => expect(a.body.toString()).toBe('Hello, Alice!'),
  },
  {
    name: 'query',
    fn: 'hello',
    path: '/api/hello?name=Q%20R',
    params: { name: null },
    expect: (a) => expect(a.body.toString()).toBe('Hello, Q R!'),
  },
  {
    name: 'JSON body, repeated query keys, status 201',
    fn: 'items',
    method: 'PUT',
    path: '/api/items/42?a=1&a=2',
    params: { id: '42' },
    headers: { 'content-type': 'application/json' },
    body: '{"x":1}',
    expect: (a) => {
      expect(a.status).toBe(201)
      expect(header(a, 'content-type')).toEqual(['application/json'])
      expect(JSON.parse(a.body.toString())).toEqual({
        id: '42',
        method: 'PUT',
        query: [
          ['a', '1'],
          ['a', '2'],
        ],
        body: { x: 1 },
      })
    },
  },
  {
    name: '204 without a body',
    fn: 'items',
    method: 'DELETE',
    path: '/api/items/7',
    params: { id: '7' },
    expect: (a) => {
      expect(a.status).toBe(204)
      expect(a.body.length).toBe(0)
    },
  },
  {
    name: 'catch-all parameter',
    fn: 'files',
    path: '/api/files/a/b/c.txt',
    params: { path: 'a/b/c.txt' },
    expect: (a) => expect(JSON.parse(a.body.toString())).toEqual({ path: 'a/b/c.txt' }),
  },
  {
    name: 'binary body both ways',
    fn: 'echo',
    method: 'POST',
    path: '/api/echo',
    headers: { 'content-type': 'application/octet-stream' },
    body: BYTES,
    expect: (a) => {
      expect(a.body).toEqual(Buffer.from(BYTES).reverse())
      expect(header(a, 'x-length')).toEqual(['256'])
      expect(header(a, 'x-sha256')).toEqual([createHash('sha256').update(BYTES).digest('hex')])
    },
  },
  {
    name: 'cookies',
    fn: 'cookies',
    path: '/api/cookies',
    headers: { cookie: 'a=b; c=d' },
    expect: (a) => {
      expect(a.body.toString()).toBe('you sent: a=b; c=d')
      expect(header(a, 'set-cookie')).toEqual([
        'session=a%20b%3Bc; Path=/; HttpOnly; SameSite=Strict',
        'theme=dark; Max-Age=3600; Secure; SameSite=None',
        'old=x; Domain=example.com; Expires=Wed, 02 Jan 2030 03:04:05 GMT',
      ])
    },
  },
  {
    name: 'custom status and header',
    fn: 'status',
    path: '/api/status/418',
    params: { code: '418' },
    expect: (a) => {
      expect(a.status).toBe(418)
      expect(a.body.toString()).toBe('status 418')
      expect(header(a, 'x-custom')).toEqual(['yes'])
    },
  },
  {
    name: 'request headers, without the protocol headers',
    fn: 'headers',
    path: '/api/headers',
    headers: { 'x-test-one': '1', 'x-test-two': 'two' },
    expect: (a) => {
      expect(JSON.parse(a.body.toString())).toEqual({
        seen: { 'x-test-one': '1', 'x-test-two': 'two' },
        thaw: [],
      })
    },
  },
  {
    name: 'a thrown error is a 500 with no body',
    fn: 'boom',
    path: '/api/boom',
    expect: (a) => {
      expect(a.status).toBe(500)
      expect(a.body.length).toBe(0)
    },
  },
  {
    name: 'a postInvocation hook replaces an error with a result',
    fn: 'rescued',
    path: '/api/rescued',
    expect: (a) => {
      expect(a.status).toBe(418)
      expect(a.body.toString()).toBe('rescued from will be rescued')
    },
  },
  {
    name: 'hooks run pre → handler → post, after appStart',
    fn: 'hooked',
    path: '/api/hooked',
    expect: (a) => {
      expect(header(a, 'x-trail')).toEqual(['pre,started=yes,post'])
      expect(a.body.toString()).toBe('hooked')
    },
  },
  {
    name: 'an undefined result is 200 with no body',
    fn: 'nothing',
    path: '/api/nothing',
    expect: (a) => {
      expect(a.status).toBe(200)
      expect(a.body.length).toBe(0)
    },
  },
  {
    name: 'a ReadableStream body',
    fn: 'chunks',
    path: '/api/chunks',
    expect: (a) => expect(a.body.toString()).toBe('one,two,three'),
  },
]

/** Every case's answer per mode, for the cross-mode comparison at the end. */
const byCase: Record<string, Record<string, Answer>> = {}

const IGNORED = new Set([
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'x-ms-invocation-id',
])

function normalize(status: number, headers: [string, string][], body: Buffer): Answer {
  const kept = headers.filter(([k]) => !IGNORED.has(k)).sort(([a], [b]) => a.localeCompare(b))
  return { status, headers: kept, body }
}

async function viaFetch(res: Response): Promise<Answer> {
  const headers: [string, string][] = []
  res.headers.forEach((v, k) => {
    if (k !== 'set-cookie') headers.push([k, v])
  })
  for (const c of res.headers.getSetCookie()) headers.push(['set-cookie', c])
  return normalize(res.status, headers, Buffer.from(await res.arrayBuffer()))
}

function init(c: Case): RequestInit {
  return { method: c.method ?? 'GET', headers: c.headers, body: c.body }
}

describe.each(['http-buffered', 'http-streaming'])(
  'the same app gives the same answers three ways (%s)',
  (app) => {
    let worker: DirectWorker
    let runner: Runner
    let cli: TestProcess
    let cliUrl: string

    beforeAll(async () => {
      const port = await freePort()
      cliUrl = `http://127.0.0.1:${port}`
      cli = startProcess(join(ROOT, 'bin/thaw'), [
        'start',
        '--script-root',
        join(APPS, app),
        '--port',
        String(port),
        '--no-watch',
      ])
      runner = createRunner({ scriptRoot: join(APPS, app) })
      worker = await startDirectWorker(join(APPS, app))
      await Promise.all([runner.ready, worker.ready, cli.waitFor(/For detailed output/)])
    })

    afterAll(async () => {
      await runner?.dispose()
      await Promise.all([worker?.process.stop(), cli?.stop()])
    })

    it.each(CASES)('$name', async (c) => {
      const alone = await worker.request(c.fn, c.path, {
        method: c.method,
        headers: c.headers,
        body: c.body,
        params: c.params ?? {},
      })
      const pairs: [string, string][] = []
      for (const [k, v] of Object.entries(alone.headers))
        for (const one of [v ?? []].flat()) pairs.push([k, one])
      const results = [
        normalize(alone.status, pairs, alone.body),
        await viaFetch(await runner.dispatchFetch(c.path, init(c))),
        await viaFetch(await fetch(`${cliUrl}${c.path}`, init(c))),
      ]
      c.expect(results[0]!)
      expect(results[1]).toEqual(results[0])
      expect(results[2]).toEqual(results[0])
      ;(byCase[c.name] ??= {})[app] = results[0]!
    })

    it('prints the function list and Executing/Executed lines as func start does', () => {
      const out = cli.output()
      const port = new URL(cliUrl).port
      expect(out).toContain(`\thello: [GET,POST] http://localhost:${port}/api/hello/{name?}\n`)
      expect(out).toContain('\ttick: timerTrigger\n')
      expect(out).toMatch(
        /\[\S+Z\] Executing 'Functions\.hello' \(Reason='This function was programmatically called via the host APIs\.', Id=[0-9a-f-]{36}\)/,
      )
      expect(out).toMatch(
        /\[\S+Z\] Executed 'Functions\.boom' \(Failed, Id=[0-9a-f-]{36}, Duration=\d+ms\)/,
      )
      expect(out).toContain('Exception: kaboom')
    })
  },
)

describe('buffered and streaming modes', () => {
  it('answer every case the same', () => {
    expect(Object.keys(byCase)).toHaveLength(CASES.length)
    for (const [name, byMode] of Object.entries(byCase)) {
      expect(byMode['http-streaming'], name).toEqual(byMode['http-buffered'])
    }
  })
})
