import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { appUrl, putHostApp } from '../../../host/deploy/host-admin.ts'

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

describe('putHostApp', () => {
  it('sends PUT /admin/apps/<name> with {name, image, settings} as JSON and the master key, and tells created from updated', async () => {
    const { url, seen } = await fakeHost(201, { name: 'hello' })
    const app = {
      name: 'hello',
      image: '127.0.0.1:5000/apps/hello@sha256:' + 'a'.repeat(64),
      settings: { GREETING: 'hi' },
    }
    const result = await putHostApp(url, 'the-master-key', app)
    expect(result).toEqual({ created: true, app: { name: 'hello' } })
    expect(seen).toEqual({
      method: 'PUT',
      url: '/admin/apps/hello',
      key: 'the-master-key',
      type: 'application/json',
      body: app,
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
      const put = putHostApp(url, 'wrong', { name: 'hello', image: 'r/x@sha256:' + 'a'.repeat(64) })
      await expect(put).rejects.toMatchObject({
        code: 'HOST_REJECTED',
        fault,
        message: expect.stringContaining('UNAUTHORIZED: the admin API needs the master key'),
      })
    },
  )

  it('says HOST_UNREACHABLE when nothing listens', async () => {
    const { url } = await fakeHost(200, {})
    await new Promise((r) => server!.close(r))
    server = undefined
    await expect(putHostApp(url, 'k', { name: 'x', image: 'r/x:1' })).rejects.toMatchObject({
      code: 'HOST_UNREACHABLE',
    })
  })
})

describe('appUrl', () => {
  it('is the app’s path on the host with the route prefix', () => {
    expect(appUrl('http://127.0.0.1:7071', 'hello')).toBe('http://127.0.0.1:7071/hello/api/')
    expect(appUrl('http://127.0.0.1:7071/', 'hello', '')).toBe('http://127.0.0.1:7071/hello/')
  })
})
