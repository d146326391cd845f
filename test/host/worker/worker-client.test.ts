import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readAnswer } from '../../../host/request-body/index.ts'
import { createWorkerClient, type DispatchInput } from '../../../host/worker/worker-client.ts'
import { tmpDir } from '../../support/tmp.ts'

const MiB = 1024 * 1024

/** `size` bytes of a pattern, written with backpressure (as a worker answers a large body). */
async function writePattern(res: ServerResponse, size: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 'worker')
  for (let sent = 0; sent < size && !res.destroyed; sent += chunk.length) {
    if (!res.write(chunk.subarray(0, Math.min(chunk.length, size - sent)))) {
      await Promise.race([once(res, 'drain'), once(res, 'close')])
    }
  }
  res.end()
}

function patternHash(size: number): string {
  const hash = createHash('sha256')
  const chunk = Buffer.alloc(64 * 1024, 'worker')
  for (let sent = 0; sent < size; sent += chunk.length)
    hash.update(chunk.subarray(0, Math.min(chunk.length, size - sent)))
  return hash.digest('hex')
}

const input = (o: Partial<DispatchInput> = {}): DispatchInput => ({
  functionName: 'hello',
  params: { name: 'thaw' },
  invocationId: 'inv-1',
  method: 'GET',
  path: '/api/hello/thaw?x=1',
  headers: { host: 'app.localhost', connection: 'keep-alive', 'x-thaw-evil': '1', 'x-a': 'b' },
  body: null,
  ...o,
})

describe('createWorkerClient (dispatch through undici, answers as AnswerSource)', () => {
  let server: Server | undefined
  afterEach(async () => {
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  /** A worker stand-in on a unix socket. */
  async function worker(handle: (req: IncomingMessage, res: ServerResponse) => void) {
    const socket = join(await tmpDir('thaw-wc-'), 'w.sock')
    server = createServer(handle)
    server.listen(socket)
    await once(server, 'listening')
    return createWorkerClient(socket)
  }

  it('forwards the request with the invocation headers and relays a large answer whole, held until it is read', async () => {
    const size = 3 * MiB + 5
    let seen: IncomingMessage | undefined
    const client = await worker((req, res) => {
      seen = req
      res.writeHead(201, { 'x-answer': 'yes', 'content-length': size, 'keep-alive': 'timeout=5' })
      void writePattern(res, size)
    })
    const out = await client.dispatch(input())
    // Not read for a while: the answer waits in the kernel and in at most 64 KiB held here.
    await new Promise((r) => setTimeout(r, 200))
    const body = await readAnswer(out.body)
    expect([out.status, out.headers['x-answer'], out.headers['keep-alive']]).toEqual([
      201,
      'yes',
      undefined,
    ])
    expect([body.length, createHash('sha256').update(body).digest('hex')]).toEqual([
      size,
      patternHash(size),
    ])
    expect(seen!.url).toBe('/api/hello/thaw?x=1')
    expect(seen!.headers).toMatchObject({
      'x-thaw-function': 'hello',
      'x-thaw-route-params': '{"name":"thaw"}',
      'x-ms-invocation-id': 'inv-1',
      'x-a': 'b',
    })
    expect(seen!.headers['x-thaw-evil']).toBeUndefined()
    await client.close()
  })

  it('rejects with the abort reason when the request is aborted before the answer comes', async () => {
    let closed!: () => void
    const gone = new Promise<void>((r) => (closed = r))
    const client = await worker((req) => req.socket.once('close', closed)) // never answers
    const abort = new AbortController()
    const out = client.dispatch(input({ signal: abort.signal }))
    setTimeout(() => abort.abort(new Error('the client went away')), 100)
    await expect(out).rejects.toThrow('the client went away')
    await gone // the exchange's connection was closed
    await client.destroy()
  })

  it('aborts the exchange when an answer is destroyed unread', async () => {
    let closed!: () => void
    const gone = new Promise<void>((r) => (closed = r))
    const client = await worker((_req, res) => {
      res.once('close', closed)
      void writePattern(res, 1024 * MiB) // far more than anyone holds
    })
    const out = await client.dispatch(input())
    out.body.destroy()
    await gone
    await client.destroy()
  })
})
