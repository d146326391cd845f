import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { makeApp } from '../../support/function-app.ts'
import { startDirectWorker, type DirectWorker } from '../../support/worker.ts'

/** Functions that ignore, stream, or read whole their request body. */
const APP = `
const { app } = require('@azure/functions')
const { createHash } = require('node:crypto')
app.post('ignore', { handler: async () => ({ body: 'ignored' }) })
app.post('hash', { handler: async (req) => {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of req.body) { hash.update(chunk); size += chunk.length }
  return { jsonBody: { size, sha256: hash.digest('hex') } }
} })
app.post('length', { handler: async (req) => ({ body: String((await req.text()).length) }) })
`

describe('request bodies in the worker', { timeout: 60_000 }, () => {
  it(
    'answers a function that never reads its body before the client has sent it',
    { timeout: 15_000 },
    async () => {
      const w = await worker()
      // Content-Length says 1 MiB; only 1 KiB comes. A worker that buffers first never answers.
      const req = open(w, 'ignore', { 'content-length': String(1 << 20) })
      req.write(Buffer.alloc(1024, 1))
      const res = await answered(req)
      expect([res.statusCode, await text(res)]).toEqual([200, 'ignored'])
      req.end(Buffer.alloc((1 << 20) - 1024, 1))
      // The rest was discarded: the worker serves the next request.
      expect(
        (await w.request('length', '/api/length', { method: 'POST', body: 'abc' })).body.toString(),
      ).toBe('3')
      await w.process.stop()
    },
  )

  it('streams a body to a function that reads it chunk by chunk, without holding it', async () => {
    const size = 192 * 1024 * 1024
    const w = await worker({ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(size) })
    const before = await peakRss(w)
    const req = open(w, 'hash', { 'content-length': String(size) })
    const sent = createHash('sha256')
    const chunk = randomBytes(1 << 20)
    let written = 0
    const write = () => {
      while (written < size) {
        sent.update(chunk)
        written += chunk.length
        if (!req.write(chunk)) return void req.once('drain', write)
      }
      req.end()
    }
    write()
    const res = await answered(req)
    expect([res.statusCode, JSON.parse(await text(res))]).toEqual([
      200,
      { size, sha256: sent.digest('hex') },
    ])
    // Measured: about 45 MiB of garbage chunks not yet collected; a worker that buffers the body
    // first holds it about four times (780 MiB for this one).
    expect((await peakRss(w)) - before).toBeLessThan(size / 2)
    await w.process.stop()
  })

  it('refuses a chunked body that grows past FUNCTIONS_REQUEST_BODY_SIZE_LIMIT while read, with 413', async () => {
    const w = await worker({ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000' })
    const ok = open(w, 'length', { 'transfer-encoding': 'chunked' })
    ok.end(Buffer.alloc(1000, 97))
    const res = await answered(ok)
    expect([res.statusCode, await text(res)]).toEqual([200, '1000'])
    const over = open(w, 'length', { 'transfer-encoding': 'chunked' })
    over.write(Buffer.alloc(600, 97))
    over.end(Buffer.alloc(600, 97))
    expect((await answered(over)).statusCode).toBe(413)
    await w.process.stop()
  })
})

async function worker(env: Record<string, string> = {}): Promise<DirectWorker> {
  const w = await startDirectWorker(
    await makeApp({ 'package.json': '{ "main": "index.js" }', 'index.js': APP }),
    { env },
  )
  await w.ready
  return w
}

function open(w: DirectWorker, fn: string, headers: Record<string, string>) {
  const req = request({
    socketPath: w.listen,
    path: `/api/${fn}`,
    method: 'POST',
    headers: { host: 'localhost', 'x-thaw-function': fn, ...headers },
  })
  req.on('error', () => {})
  return req
}

function answered(req: ReturnType<typeof request>): Promise<IncomingMessage> {
  return new Promise((resolve) => req.once('response', resolve))
}

async function text(res: IncomingMessage): Promise<string> {
  let out = ''
  for await (const c of res) out += (c as Buffer).toString()
  return out
}

/** The worker's peak resident set (VmHWM), bytes. */
async function peakRss(w: DirectWorker): Promise<number> {
  const status = await readFile(`/proc/${w.process.pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024
}
