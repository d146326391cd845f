import { once } from 'node:events'
import type { Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { ConnectionRefusal } from '../../../host/server/connection-limits.ts'
import {
  createHostServer,
  DEFAULT_SERVER_LIMITS,
  type ServerLimits,
} from '../../../host/server/http-server.ts'

/** What a raw client saw before the server closed its connection. */
interface Closed {
  /** Everything the server sent. */
  received: string
  /** Bytes of its own request the client had sent. */
  sent: number
}

const HEAD = `GET /app/api/hello HTTP/1.1\r\nHost: x\r\nUser-Agent: ${'slow'.repeat(30)}\r\n\r\n`

describe('the host HTTP server', () => {
  let server: Server | undefined
  const refused: ConnectionRefusal[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    refused.length = 0
    server?.closeAllConnections()
    await new Promise((r) => server?.close(r))
  })

  async function serve(limits: Partial<ServerLimits>): Promise<number> {
    server = createHostServer(
      { ...DEFAULT_SERVER_LIMITS, ...limits },
      (req, res) => {
        req.resume()
        req.on('end', () => res.end('ok'))
      },
      (r) => refused.push(r),
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return (server.address() as AddressInfo).port
  }

  /** A raw client from `from` that sends `request` `bytes` at a time every `everyMs`. */
  function trickle(
    port: number,
    request: string,
    o: { from?: string; bytes?: number; everyMs?: number } = {},
  ) {
    const socket = connect({ port, host: '127.0.0.1', localAddress: o.from })
    sockets.push(socket)
    const out: Closed = { received: '', sent: 0 }
    socket.on('data', (d: Buffer) => (out.received += d.toString()))
    socket.on('error', () => {})
    const timer = setInterval(() => {
      if (out.sent >= request.length) return
      const part = request.slice(out.sent, out.sent + (o.bytes ?? 1))
      out.sent += part.length
      socket.write(part)
    }, o.everyMs ?? 50)
    // Not events.once: it rejects on the reset a refused connection gets.
    const closed = new Promise<Closed>((resolve) =>
      socket.once('close', () => {
        clearInterval(timer)
        resolve(out)
      }),
    )
    return { socket, out, closed }
  }

  /** One plain GET on its own connection from `from`: the status line, or null if refused. */
  async function get(port: number, from?: string): Promise<string | null> {
    const c = trickle(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', {
      from,
      bytes: 1000,
      everyMs: 1,
    })
    const { received } = await c.closed
    return received ? received.split('\r\n')[0]! : null
  }

  it.each([
    // request line and headers a byte at a time (slowloris)
    ['sends its head a byte at a time', HEAD],
    // a request body may be slow; its head may not
    ['stops before the blank line that ends its head', 'GET / HTTP/1.1\r\nHost: x\r\n'],
    // connects and says nothing
    ['sends nothing', ''],
  ])(
    'answers 408 and closes a connection that %s, before the head is complete',
    async (_, request) => {
      const port = await serve({ headersTimeoutMs: 500 })
      const { closed } = trickle(port, request, { bytes: 1, everyMs: 100 })
      const out = await closed
      expect(out.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
      if (request) expect(out.sent).toBeLessThan(HEAD.length)
    },
  )

  it('times the head of every request on a kept-alive connection, not only the first', async () => {
    const port = await serve({ headersTimeoutMs: 500 })
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    let received = ''
    socket.on('data', (d: Buffer) => (received += d.toString()))
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(socket, 'data') // the first answer; the connection stays open
    let sent = 0
    const timer = setInterval(() => socket.write(HEAD[sent++] ?? ''), 100)
    await new Promise((r) => socket.once('close', r))
    clearInterval(timer)
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*HTTP\/1\.1 408 Request Timeout\r\n/)
    expect(sent).toBeLessThan(HEAD.length)
  })

  it('serves a head that arrives in time, even in pieces', async () => {
    const port = await serve({ headersTimeoutMs: 5000 })
    const { closed } = trickle(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', {
      bytes: 8,
      everyMs: 20,
    })
    expect((await closed).received).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
  })

  it('closes a connection over the cap for its address at once, and serves other addresses', async () => {
    const port = await serve({ maxConnectionsPerAddress: 3 })
    const held = [0, 1, 2].map(() => trickle(port, '', { from: '127.0.0.2' }))
    await Promise.all(held.map((h) => once(h.socket, 'connect')))
    expect(await get(port, '127.0.0.2')).toBeNull() // closed before a byte was answered
    expect(await get(port, '127.0.0.3')).toBe('HTTP/1.1 200 OK')
    expect(refused).toEqual(['per_address'])
    // A connection of that address closes: it may open another.
    held[0]!.socket.destroy()
    await held[0]!.closed
    expect(await get(port, '127.0.0.2')).toBe('HTTP/1.1 200 OK')
  })

  it('closes a connection over the cap in all at once, whatever its address', async () => {
    const port = await serve({ maxConnections: 3 })
    const held = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((from) => trickle(port, '', { from }))
    await Promise.all(held.map((h) => once(h.socket, 'connect')))
    expect(await get(port, '127.0.0.5')).toBeNull()
    expect(refused).toEqual(['total'])
    held[0]!.socket.destroy()
    await held[0]!.closed
    expect(await get(port, '127.0.0.5')).toBe('HTTP/1.1 200 OK')
  })
})
