import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { appUrl, deployRevision, functionUrl } from '../../../host/deploy/host-admin.ts'

let server: Server | undefined
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)))
  server = undefined
})

interface Seen {
  method?: string
  url?: string
  key?: string
  type?: string
  body?: unknown
}

async function fakeHost(status: number, answer: unknown): Promise<{ url: string; seen: Seen }> {
  const seen: Seen = {}
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      Object.assign(seen, {
        method: req.method,
        url: req.url,
        key: req.headers['x-functions-key'],
        type: req.headers['content-type'],
        body: JSON.parse(body),
      })
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
    })
  })
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

describe('deployRevision', () => {
  const image = '127.0.0.1:5000/apps/hello@sha256:' + 'a'.repeat(64)

  it('sends POST /admin/apps/<name>/revisions with {image, settings, unset} as JSON and the master key', async () => {
    const answer = { app: 'hello', created: true, restarted: true, revision: { number: 1 } }
    const { url, seen } = await fakeHost(201, answer)
    const change = { image, settings: { GREETING: 'hi' }, unset: ['OLD'] }
    expect(await deployRevision(url, 'the-master-key', 'hello', change)).toEqual(answer)
    expect(seen).toEqual({
      method: 'POST',
      url: '/admin/apps/hello/revisions',
      key: 'the-master-key',
      type: 'application/json',
      body: change,
    })
  })

  it.each([
    // [status, fault]
    [401, 'user'], // a wrong master key
    [400, 'user'], // a body the host refuses
    [500, 'system'], // the host failed
  ])(
    'turns a %i into HOST_REJECTED with the host’s error code and message',
    async (status, fault) => {
      const { url } = await fakeHost(status, {
        error: { code: 'UNAUTHORIZED', message: 'the admin API needs the master key' },
      })
      await expect(deployRevision(url, 'wrong', 'hello', { image })).rejects.toMatchObject({
        code: 'HOST_REJECTED',
        fault,
        message: expect.stringContaining('UNAUTHORIZED: the admin API needs the master key'),
      })
    },
  )

  it('turns a failed health gate into REVISION_FAILED with the node’s log lines', async () => {
    const { url } = await fakeHost(422, {
      error: {
        code: 'REVISION_FAILED',
        message: 'revision 2 of hello did not start',
        revision: 2,
        logs: ['Error: boom', '    at index.js:1'],
      },
    })
    await expect(deployRevision(url, 'k', 'hello', { image })).rejects.toMatchObject({
      code: 'REVISION_FAILED',
      fault: 'user',
      message:
        "revision 2 of hello did not start\nthe node's log:\n  | Error: boom\n  |     at index.js:1",
    })
  })

  it('says HOST_UNREACHABLE, a user fault (one line), when nothing listens', async () => {
    const { url } = await fakeHost(200, {})
    await new Promise((r) => server!.close(r))
    server = undefined
    await expect(deployRevision(url, 'k', 'x', { image: 'r/x:1' })).rejects.toMatchObject({
      code: 'HOST_UNREACHABLE',
      fault: 'user',
      message: expect.stringMatching(/cannot reach the host at .*ECONNREFUSED/),
    })
  })
})

describe('appUrl', () => {
  it('is the app’s path on the host with the route prefix', () => {
    expect(appUrl('http://127.0.0.1:7071', 'hello')).toBe('http://127.0.0.1:7071/hello/api/')
    expect(appUrl('http://127.0.0.1:7071/', 'hello', '')).toBe('http://127.0.0.1:7071/hello/')
  })

  it('gives a function’s URL by path, its route template as written', () => {
    expect(functionUrl('http://127.0.0.1:7071', 'hello', { path: 'api/items/{id?}' })).toBe(
      'http://127.0.0.1:7071/hello/api/items/{id?}',
    )
  })
})
