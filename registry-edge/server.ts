import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { createRegistryEdge, type RegistryEdge, type RegistryEdgeOptions } from './app.ts'

export interface StartRegistryEdgeOptions extends RegistryEdgeOptions {
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0: a free port, chosen by the OS (tests). */
  port?: number
  /** How long close() lets in-flight requests finish before cutting connections. Default 10 s. */
  graceMs?: number
}

export interface RunningRegistryEdge {
  /** `http://host:port`, for clients. */
  readonly url: string
  readonly port: number
  readonly edge: RegistryEdge
  readonly server: Server
  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (up to `graceMs`), close idle
   * keep-alive connections, then close the edge. Idempotent.
   */
  close(): Promise<void>
}

/**
 * Starts an edge on a real HTTP server (Node's http via @hono/node-server).
 *
 * @example
 *   const { url, close } = await startRegistryEdge({ store: dir })
 *   await fetch(`${url}/v2/`)
 *   await close()
 */
export async function startRegistryEdge(options: StartRegistryEdgeOptions): Promise<RunningRegistryEdge> {
  const edge = await createRegistryEdge(options)
  // overrideGlobalObjects: false keeps @hono/node-server from replacing globalThis.Response and
  // Request with its own classes: a library must not change globals under other code in the
  // process (it broke `instanceof Response` in tests).
  const server = createAdaptorServer({ fetch: edge.fetch, overrideGlobalObjects: false }) as Server
  // Long uploads must not be cut by Node's default 5-minute request timeout.
  server.requestTimeout = 0
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  try {
    await once(server, 'listening')
  } catch (err) {
    await edge.close()
    throw err
  }
  const { port, address } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${port}`,
    port,
    edge,
    server,
    close: () => (closing ??= shutdown(server, edge, options.graceMs ?? 10_000)),
  }
}

async function shutdown(server: Server, edge: RegistryEdge, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Idle keep-alive connections hold close() open; in-flight ones become idle when they finish.
  const sweep = setInterval(() => server.closeIdleConnections(), 50)
  server.closeIdleConnections()
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs)
  try {
    await closed
  } finally {
    clearInterval(sweep)
    clearTimeout(deadline)
  }
  await edge.close()
}
