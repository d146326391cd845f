import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, get, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import {
  answerFromReadable,
  relayAnswer,
  type ClientPaceLimits,
} from '../../../host/request-body/index.ts'

/** What the server side saw: the answer went out whole, or why it was cut. */
type Outcome = { ok: true } | { ok: false; code: string | undefined; sourceDestroyed: boolean }

const MiB = 1024 * 1024
const QUICK: ClientPaceLimits = { timeoutMs: 300, minBytesPerSecond: 0 }

/**
 * `size` bytes of a repeating pattern, made as they are read, after `pauseMs` between chunks.
 * Destroyed early, it fails with an error, as undici's answer bodies do (RequestAbortedError).
 */
function answerSource(size: number, pauseMs = 0): Readable {
  const chunk = Buffer.alloc(64 * 1024, 'thaw')
  let sent = 0
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null)
      const next = chunk.subarray(0, Math.min(chunk.length, size - sent))
      sent += next.length
      if (pauseMs) setTimeout(() => this.push(next), pauseMs)
      else this.push(next)
    },
    destroy(err, callback) {
      callback(err ?? (sent < size ? new Error('aborted') : null))
    },
  })
}

function patternHash(size: number): string {
  const hash = createHash('sha256')
  const chunk = Buffer.alloc(64 * 1024, 'thaw')
  for (let sent = 0; sent < size; sent += chunk.length)
    hash.update(chunk.subarray(0, Math.min(chunk.length, size - sent)))
  return hash.digest('hex')
}

describe('relayAnswer', () => {
  let server: Server | undefined
  afterEach(async () => {
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  /** A real server that answers every request with `source()` relayed under `pace`. */
  async function serve(
    pace: ClientPaceLimits,
    source: () => Readable,
  ): Promise<{ port: number; outcome: Promise<Outcome> }> {
    let settle!: (o: Outcome) => void
    const outcome = new Promise<Outcome>((r) => (settle = r))
    server = createServer((_req, res) => {
      const body = source()
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      relayAnswer(answerFromReadable(body), res, pace).then(
        () => settle({ ok: true }),
        (err: unknown) =>
          settle({
            ok: false,
            code: (err as { code?: string }).code,
            sourceDestroyed: body.destroyed,
          }),
      )
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { port: (server.address() as AddressInfo).port, outcome }
  }

  it('relays an answer whole to a client that reads it', async () => {
    const size = 8 * MiB + 7
    const { port, outcome } = await serve(QUICK, () => answerSource(size))
    const hash = createHash('sha256')
    const res = await new Promise<import('node:http').IncomingMessage>((r) =>
      get(`http://127.0.0.1:${port}/`, r),
    )
    for await (const chunk of res) hash.update(chunk as Buffer)
    expect(hash.digest('hex')).toBe(patternHash(size))
    expect(await outcome).toEqual({ ok: true })
  })

  it('resets a client that never reads once the answer waits on it, and stops the source', async () => {
    // 256 MiB: far more than the socket buffers between the two, so the answer must wait.
    const { port, outcome } = await serve(QUICK, () => answerSource(256 * MiB))
    const socket = connect(port, '127.0.0.1')
    socket.pause() // never reads
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const reset = new Promise((r) => socket.once('error', (e: NodeJS.ErrnoException) => r(e.code)))
    expect(await outcome).toEqual({ ok: false, code: 'ANSWER_TIMEOUT', sourceDestroyed: true })
    // A reset reaches the client at once; a FIN would wait behind the answer it never takes.
    socket.write('\r\n')
    expect(await reset).toBe('ECONNRESET')
  })

  it('does not blame the client for an answer that is slow to come', async () => {
    // Pauses of twice the timeout between chunks: the client waits on the node, not the reverse.
    const size = 4 * 64 * 1024
    const { port, outcome } = await serve(QUICK, () => answerSource(size, 600))
    const hash = createHash('sha256')
    const res = await new Promise<import('node:http').IncomingMessage>((r) =>
      get(`http://127.0.0.1:${port}/`, r),
    )
    for await (const chunk of res) hash.update(chunk as Buffer)
    expect(hash.digest('hex')).toBe(patternHash(size))
    expect(await outcome).toEqual({ ok: true })
  })

  it('stops the source when the client goes away mid-answer', async () => {
    const { port, outcome } = await serve({ timeoutMs: 60_000, minBytesPerSecond: 0 }, () =>
      answerSource(256 * MiB),
    )
    const socket = connect(port, '127.0.0.1')
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(socket, 'data')
    socket.destroy()
    expect(await outcome).toEqual({ ok: false, code: 'CLIENT_CLOSED', sourceDestroyed: true })
  })
})
