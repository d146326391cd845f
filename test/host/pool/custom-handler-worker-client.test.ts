import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createCustomHandlerClient,
  type FunctionJsonFunction,
} from '../../../host/custom-handler/index.ts'
import { createCustomHandlerWorkerClient } from '../../../host/pool/custom-handler-worker-client.ts'
import { readAnswer, type AnswerSource } from '../../../host/request-body/index.ts'
import { WorkerCallError, type DispatchInput } from '../../../host/worker/worker-client.ts'

const fn = (name: string, httpInAndOut = true): FunctionJsonFunction => ({
  name,
  trigger: 'httpTrigger',
  methods: null,
  route: `${name}/{id}`,
  authLevel: 'anonymous',
  servable: true,
  bindings: {},
  triggerName: 'req',
  httpOutput: 'res',
  httpInAndOut,
  disabled: false,
})

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

/** A handler on a real port: records what it got, answers what `answer` says. */
async function handler(answer: (seen: Seen, res: ServerResponse) => void) {
  const seen: Seen[] = []
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const s = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    }
    seen.push(s)
    answer(s, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  return { seen, baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

function input(o: Partial<Omit<DispatchInput, 'body'>> & { body?: string } = {}): DispatchInput {
  const body = o.body ?? null
  return {
    functionName: 'greet',
    params: { id: '42' },
    invocationId: 'inv-1',
    method: 'GET',
    path: '/api/greet/42?x=1',
    headers: { host: 'app.localhost', ...(body ? { 'content-length': String(body.length) } : {}) },
    ...o,
    body: body === null ? null : Readable.from([Buffer.from(body)]),
  }
}

async function text(body: AnswerSource): Promise<string> {
  return (await readAnswer(body)).toString()
}

describe('createCustomHandlerWorkerClient', () => {
  it('posts the payload to /<function> and answers its HTTP output, passing on the Logs', async () => {
    const h = await handler((_s, res) =>
      res.end(
        JSON.stringify({
          Outputs: { res: { statusCode: 202, headers: { 'x-a': 'b' }, body: 'hi' } },
          Logs: ['one'],
        }),
      ),
    )
    const logs: unknown[] = []
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: false }),
      functions: [fn('greet')],
      onLogs: (...a) => logs.push(a),
    })
    const out = await client.dispatch(input())
    expect([out.status, out.headers['x-a'], await text(out.body)]).toEqual([202, 'b', 'hi'])
    expect(logs).toEqual([['greet', 'inv-1', ['one']]])
    const [seen] = h.seen
    expect([seen!.method, seen!.url, seen!.headers['x-azure-functions-invocationid']]).toEqual([
      'POST',
      '/greet',
      'inv-1',
    ])
    const payload = JSON.parse(seen!.body)
    expect(payload.Data.req.Params).toEqual({ id: '42' })
    expect(payload.Data.req.Url).toBe('http://app.localhost/api/greet/42?x=1')
    await client.close()
  })

  it('forwards the original request when enableForwardingHttpRequest is on', async () => {
    const h = await handler((s, res) =>
      res.writeHead(200, { 'x-echo': s.method }).end(`${s.url} ${s.body}`),
    )
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: true }),
      functions: [fn('greet')],
    })
    const out = await client.dispatch(input({ method: 'POST', body: 'data' }))
    expect([out.status, out.headers['x-echo'], await text(out.body)]).toEqual([
      200,
      'POST',
      '/api/greet/42?x=1 data',
    ])
    await client.destroy()
  })

  it.each([
    // The handler refuses the payload call (the host's EnsureSuccessStatusCode): the function failed.
    [
      'a non-2xx answer',
      (_s: Seen, res: ServerResponse) => res.writeHead(500).end('boom'),
      /answered 500/,
    ],
    // Not the protocol's JSON: the function failed too.
    [
      'an answer that is not JSON',
      (_s: Seen, res: ServerResponse) => res.end('<html>'),
      /invalid JSON/,
    ],
  ])('answers an empty 500 and tells the log why for %s', async (_name, answer, message) => {
    const h = await handler(answer)
    const failures: string[][] = []
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: false }),
      functions: [fn('greet')],
      onFailure: (name, id, why) => void failures.push([name, id, why]),
    })
    const out = await client.dispatch(input())
    expect(out.status).toBe(500)
    expect(await text(out.body)).toBe('') // no internals for the caller
    expect(failures).toEqual([['greet', input().invocationId, expect.stringMatching(message)]])
    await client.destroy()
  })

  it('answers 413 for a body over the limit without calling the handler', async () => {
    const h = await handler((_s, res) => res.end('{}'))
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: false }),
      functions: [fn('greet')],
      bodyLimit: 3,
    })
    const out = await client.dispatch(input({ method: 'POST', body: 'four' }))
    expect(out.status).toBe(413)
    expect(h.seen).toEqual([])
    await client.destroy()
  })

  it('streams a forwarded body: the handler reads its start before the rest was sent', async () => {
    // Held back until the handler has the first part: a client that buffered it first would wait
    // forever.
    let gotFirst!: () => void
    const first = new Promise<void>((r) => (gotFirst = r))
    const server = createServer(async (req, res) => {
      let body = ''
      for await (const c of req) {
        body += (c as Buffer).toString()
        if (body.startsWith('first')) gotFirst()
      }
      res.end(`got ${body}`)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    servers.push(server)
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        forwarding: true,
      }),
      functions: [fn('greet')],
    })
    const body = new Readable({ read() {} })
    body.push('first ')
    void first.then(() => {
      body.push('rest')
      body.push(null)
    })
    const headers = { host: 'app.localhost', 'transfer-encoding': 'chunked' }
    const out = await client.dispatch({ ...input({ method: 'POST', headers }), body })
    expect([out.status, await text(out.body)]).toEqual([200, 'got first rest'])
    await client.destroy()
  })

  it('rejects (the front door answers 502) when the handler cannot be reached', async () => {
    const h = await handler((_s, res) => res.end('{}'))
    await new Promise((r) => servers.pop()!.close(r))
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: false }),
      functions: [fn('greet')],
    })
    await expect(client.dispatch(input())).rejects.toThrow()
    await client.destroy()
  })

  it('invokes by hand with the payload protocol, and refuses unknown functions with 404', async () => {
    const h = await handler((_s, res) =>
      res.end(JSON.stringify({ ReturnValue: 7, Outputs: { out: 'x' } })),
    )
    const client = createCustomHandlerWorkerClient({
      client: createCustomHandlerClient({ baseUrl: h.baseUrl, forwarding: false }),
      functions: [fn('greet', false)],
    })
    expect(await client.invoke('GREET', { a: 1 }, 'inv-2')).toEqual({
      returnValue: 7,
      outputs: { out: 'x' },
    })
    expect(JSON.parse(h.seen[0]!.body).Data.req).toEqual({ a: 1 })
    const err = await client.invoke('nope', null, 'inv-3').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WorkerCallError)
    expect((err as WorkerCallError).status).toBe(404)
    await client.destroy()
  })
})
