import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  meterBody,
  type MeteredBody,
  type RequestBodyLimits,
} from '../../../host/request-body/index.ts'

/** What the server side saw: the body it was given, or why it was refused. */
type Outcome =
  | { ok: true; size: number; sha256: string }
  | { ok: false; code: string | undefined; message: string; passed: number }

const LOOSE: RequestBodyLimits = { maxBytes: 64 << 20, timeoutMs: 10_000, minBytesPerSecond: 0 }

describe('meterBody', () => {
  let server: Server | undefined
  afterEach(async () => {
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  /** A real server that meters each request body and reads it with `consume`. */
  async function serve(
    limits: RequestBodyLimits,
    consume: (body: AsyncIterable<Buffer>) => AsyncIterable<Buffer> = (b) => b,
    before: (body: MeteredBody) => Promise<void> = async () => {},
  ): Promise<{ url: string; outcome: Promise<Outcome> }> {
    let settle!: (o: Outcome) => void
    const outcome = new Promise<Outcome>((r) => (settle = r))
    server = createServer(async (req, res) => {
      const body = meterBody(req, limits)
      const hash = createHash('sha256')
      let size = 0
      try {
        await before(body)
        for await (const chunk of consume(body)) {
          hash.update(chunk)
          size += chunk.length
        }
        settle({ ok: true, size, sha256: hash.digest('hex') })
        res.end()
      } catch (err) {
        settle({
          ok: false,
          code: body.refusal?.code,
          message: (err as Error).message,
          passed: size,
        })
        res.destroy()
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, outcome }
  }

  it('passes a body within the limit through unchanged', async () => {
    const { url, outcome } = await serve({ ...LOOSE, maxBytes: 4 << 20 })
    const data = randomBytes(4 << 20)
    post(url, { 'transfer-encoding': 'chunked' }).end(data)
    expect(await outcome).toEqual({ ok: true, size: data.length, sha256: sha256(data) })
  })

  it('refuses a chunked body that grows past maxBytes with BODY_TOO_LARGE, passing on no more than the limit', async () => {
    const { url, outcome } = await serve({ ...LOOSE, maxBytes: 1 << 20 })
    const req = post(url, { 'transfer-encoding': 'chunked' })
    for (let i = 0; i < 8; i++) req.write(randomBytes(256 << 10))
    req.end()
    const o = await outcome
    expect(o).toMatchObject({
      ok: false,
      code: 'BODY_TOO_LARGE',
      message: /larger than 1048576 bytes/,
    })
    expect(o.ok === false && o.passed).toBeLessThanOrEqual(1 << 20)
  })

  it('refuses a client that goes silent mid-body with BODY_TIMEOUT', async () => {
    const { url, outcome } = await serve({ ...LOOSE, timeoutMs: 200 })
    const req = post(url, { 'content-length': '1000' })
    req.write('0123456789') // and nothing more
    expect(await outcome).toMatchObject({
      ok: false,
      code: 'BODY_TIMEOUT',
      message: /no data for 200 ms/,
      passed: 10,
    })
    req.destroy()
  })

  it('refuses a client that keeps sending, but under the least rate, with BODY_TIMEOUT', async () => {
    // 10 bytes every 50 ms (200 bytes/s): never silent for 300 ms, always under 1000 bytes/s.
    const { url, outcome } = await serve({
      maxBytes: 1 << 20,
      timeoutMs: 300,
      minBytesPerSecond: 1000,
    })
    const req = post(url, { 'content-length': String(1 << 20) })
    const timer = setInterval(() => req.write('0123456789'), 50)
    try {
      expect(await outcome).toMatchObject({
        ok: false,
        code: 'BODY_TIMEOUT',
        message: /under 1000 bytes\/s/,
      })
    } finally {
      clearInterval(timer)
      req.destroy()
    }
  })

  it('does not blame the client for the time its reader does not read', async () => {
    // The reader stops for 5 × the deadline after its first chunk; the client has sent everything
    // and waits on backpressure meanwhile: that is not silence.
    const slowReader = async function* (body: AsyncIterable<Buffer>) {
      let first = true
      for await (const chunk of body) {
        yield chunk
        if (first) await new Promise((r) => setTimeout(r, 500))
        first = false
      }
    }
    const { url, outcome } = await serve(
      { maxBytes: 8 << 20, timeoutMs: 100, minBytesPerSecond: 1000 },
      slowReader,
    )
    const data = randomBytes(8 << 20)
    post(url, { 'content-length': String(data.length) }).end(data)
    expect(await outcome).toEqual({ ok: true, size: data.length, sha256: sha256(data) })
  })
})

describe('readAhead', () => {
  let server: Server | undefined
  afterEach(async () => {
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  /** A real server that reads ahead `bytes`, says how much it held, then reads the rest. */
  async function serve(limits: RequestBodyLimits, bytes: number) {
    let settle!: (o: { held: number; size: number; sha256: string } | { code?: string }) => void
    const outcome = new Promise<Parameters<typeof settle>[0]>((r) => (settle = r))
    server = createServer(async (req, res) => {
      const body = meterBody(req, limits)
      try {
        await body.readAhead(bytes)
        const held = body.readableLength
        const hash = createHash('sha256')
        let size = 0
        for await (const chunk of body) {
          hash.update(chunk as Buffer)
          size += (chunk as Buffer).length
        }
        settle({ held, size, sha256: hash.digest('hex') })
        res.end()
      } catch {
        settle({ code: body.refusal?.code })
        res.destroy()
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, outcome }
  }

  it('holds at least what it was asked for of a longer body, and loses no byte of it', async () => {
    const { url, outcome } = await serve(LOOSE, 16 * 1024)
    const data = randomBytes(4 << 20)
    post(url, { 'content-length': String(data.length) }).end(data)
    const o = await outcome
    expect(o).toEqual({ held: expect.any(Number), size: data.length, sha256: sha256(data) })
    expect('held' in o && o.held).toBeGreaterThanOrEqual(16 * 1024)
  })

  it('holds all of a body shorter than it was asked for', async () => {
    const { url, outcome } = await serve(LOOSE, 16 * 1024)
    const data = randomBytes(100)
    post(url, { 'transfer-encoding': 'chunked' }).end(data)
    expect(await outcome).toEqual({ held: 100, size: 100, sha256: sha256(data) })
  })

  it('refuses a body that trickles in while it reads ahead, with BODY_TIMEOUT', async () => {
    const { url, outcome } = await serve({ ...LOOSE, timeoutMs: 300, minBytesPerSecond: 0 }, 16384)
    const req = post(url, { 'content-length': '100000' })
    const timer = setInterval(() => req.write('x'), 400) // a byte now and then, never 16 KiB
    try {
      expect(await outcome).toEqual({ code: 'BODY_TIMEOUT' })
    } finally {
      clearInterval(timer)
      req.destroy()
    }
  })

  it('refuses a body over the limit while it reads ahead, with BODY_TOO_LARGE', async () => {
    const { url, outcome } = await serve({ ...LOOSE, maxBytes: 1000 }, 16384)
    post(url, { 'transfer-encoding': 'chunked' }).end(randomBytes(5000))
    expect(await outcome).toEqual({ code: 'BODY_TOO_LARGE' })
  })
})

function post(url: string, headers: Record<string, string>) {
  const req = request(url, { method: 'POST', headers })
  req.on('error', () => {}) // the server may cut the upload; that is the point
  req.on('response', (res: IncomingMessage) => res.resume())
  return req
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
