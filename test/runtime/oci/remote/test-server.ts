import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll } from 'vitest'

/**
 * A small HTTP server on 127.0.0.1, port 0, for fault injection where a real registry cannot
 * misbehave on demand. It records every request (with its body) before the handler runs, and is
 * closed when the test file ends.
 */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: Buffer
}

export type Handler = (req: SeenRequest, res: ServerResponse, raw: IncomingMessage) => unknown

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  url: string
  requests: SeenRequest[]
  /** TCP connections accepted so far. */
  connections(): number
  /** Requests as "METHOD /path?query" strings. */
  lines(): string[]
  setHandler(handler: Handler): void
  close(): Promise<void>
}

const open = new Set<TestServer>()
let hooked = false

export async function startTestServer(handler: Handler): Promise<TestServer> {
  if (!hooked) {
    hooked = true
    afterAll(async () => {
      await Promise.all([...open].map((s) => s.close()))
    })
  }
  let current = handler
  const requests: SeenRequest[] = []
  const server = createServer((raw, res) => {
    const chunks: Buffer[] = []
    raw.on('data', (c: Buffer) => chunks.push(c))
    raw.on('error', () => undefined)
    raw.on('end', () => {
      const seen = {
        method: raw.method!,
        url: raw.url!,
        headers: raw.headers,
        body: Buffer.concat(chunks),
      }
      requests.push(seen)
      Promise.resolve(current(seen, res, raw)).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500)
        res.end(String(err.stack))
      })
    })
  })
  let connections = 0
  server.on('connection', () => connections++)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  let closing: Promise<void> | undefined
  const self: TestServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    lines: () => requests.map((r) => `${r.method} ${r.url}`),
    setHandler(h) {
      current = h
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }).then(() => void open.delete(self))
      return closing
    },
  }
  open.add(self)
  return self
}

/** Sends a JSON body with a status and headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': bytes.length,
    ...headers,
  })
  res.end(bytes)
}

/** Sends the distribution-spec error body. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  headers: Record<string, string> = {},
): void {
  sendJson(
    res,
    status,
    { errors: [{ code, message: `${code.toLowerCase()} (test server)` }] },
    headers,
  )
}
