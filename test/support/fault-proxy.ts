import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { onCleanup } from './cleanup.ts'

/**
 * An HTTP proxy in front of a registry that injects faults for real, on the wire:
 *   pass       forward everything
 *   flip       range answers (206) arrive with one bit flipped, same length
 *   truncate   range answers stop halfway (headers promise the full length), connection dropped
 *   kill       the first range answer stops halfway, then the proxy answers nothing (edge died)
 *   blackhole  requests are accepted and never answered
 *   down       connections are reset at once
 *   slow       range answers are held back `delayMs` before they are forwarded intact
 * In any mode, `latencyMs` holds every request back that long before it is handled (a far edge).
 * It serves `/v2/<name>/_thaw/bundle/...` itself from `bundle` (404 without one), and logs every
 * request ("GET /v2/... bytes=a-b") so tests count what crossed it.
 */
export type FaultMode = 'pass' | 'flip' | 'truncate' | 'kill' | 'blackhole' | 'down' | 'slow'

export interface FaultProxy {
  url: string
  address: string
  mode: FaultMode
  bundle: Buffer | undefined
  /** Delay of a range answer in 'slow' mode. */
  delayMs: number
  /** Delay of every request, in every mode (default 0). */
  latencyMs: number
  requests: string[]
  /** Bytes of response bodies sent. */
  bytes: number
  close(): Promise<void>
}

/** `closeAfterAll: false` outside vitest (benches close it themselves). */
export async function startFaultProxy(
  upstream: string,
  options: { closeAfterAll?: boolean } = {},
): Promise<FaultProxy> {
  const target = new URL(upstream)
  const sockets = new Set<Socket>()
  const held: ServerResponse[] = []
  const proxy: FaultProxy = {
    url: '',
    address: '',
    mode: 'pass',
    bundle: undefined,
    delayMs: 50,
    latencyMs: 0,
    requests: [],
    bytes: 0,
    close: async () => {},
  }
  const server = createServer((req, res) => handle(req, res))
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    if (proxy.mode === 'down') s.destroy()
  })

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (proxy.latencyMs > 0) {
      req.pause()
      return void setTimeout(() => {
        req.resume()
        serve(req, res)
      }, proxy.latencyMs)
    }
    serve(req, res)
  }

  function serve(req: IncomingMessage, res: ServerResponse): void {
    const range = req.headers.range ? ` ${req.headers.range}` : ''
    proxy.requests.push(`${req.method} ${req.url}${range}`)
    if (proxy.mode === 'down') return void res.socket?.destroy()
    if (proxy.mode === 'blackhole') return void held.push(res)
    if (req.url?.includes('/_thaw/bundle/')) return serveBundle(res)
    const up = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upRes) => respond(upRes, res, range !== ''),
    )
    up.on('error', () => res.socket?.destroy())
    req.pipe(up)
  }

  function serveBundle(res: ServerResponse): void {
    if (!proxy.bundle) {
      res.writeHead(404, { 'content-type': 'application/json' })
      return void res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"no profile"}]}')
    }
    res.writeHead(200, {
      'content-type': 'application/vnd.thaw.bundle.v1',
      'content-length': proxy.bundle.length,
    })
    proxy.bytes += proxy.bundle.length
    res.end(proxy.bundle)
  }

  function respond(upRes: IncomingMessage, res: ServerResponse, isRange: boolean): void {
    const mode = proxy.mode
    if (!isRange || upRes.statusCode !== 206 || mode === 'pass') {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.on('data', (c: Buffer) => (proxy.bytes += c.length))
      return void upRes.pipe(res)
    }
    const chunks: Buffer[] = []
    upRes.on('data', (c: Buffer) => chunks.push(c))
    upRes.on('end', () => {
      const body = Buffer.concat(chunks)
      if (mode === 'slow') {
        return void setTimeout(() => {
          res.writeHead(upRes.statusCode!, upRes.headers)
          proxy.bytes += body.length
          res.end(body)
        }, proxy.delayMs)
      }
      res.writeHead(upRes.statusCode!, upRes.headers)
      if (mode === 'flip') {
        body[body.length >> 1]! ^= 0x10
        proxy.bytes += body.length
        return void res.end(body)
      }
      // truncate / kill: half the promised body, then the connection goes away.
      res.write(body.subarray(0, body.length >> 1))
      proxy.bytes += body.length >> 1
      if (mode === 'kill') proxy.mode = 'down'
      setTimeout(() => res.socket?.destroy(), 20)
    })
  }

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  proxy.url = `http://127.0.0.1:${port}`
  proxy.address = `127.0.0.1:${port}`
  let closed: Promise<void> | undefined
  proxy.close = () =>
    (closed ??= new Promise<void>((resolve) => {
      for (const r of held) r.socket?.destroy()
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }))
  if (options.closeAfterAll !== false) onCleanup('servers', () => proxy.close())
  return proxy
}
