import { createServer, type RequestListener, type Server } from 'node:http'
import { limitConnections, type ConnectionRefusal } from './connection-limits.ts'

/**
 * What the host's HTTP server allows a connection, for the function door and the admin API alike
 * (one server). Bodies and answers have their own per-app deadline (host/request-body).
 */
export interface ServerLimits {
  /**
   * A request's head (request line and headers) must arrive within this, from its first byte, or
   * from the connection's start for a connection that sends nothing: else 408 and the connection
   * is closed (node:http `headersTimeout`, checked every second, so the cut comes within one
   * second more). Slowloris clients, which send headers a byte at a time, hold a connection no
   * longer, and never a node slot: a slot is taken only once the head is complete.
   */
  headersTimeoutMs: number
  /**
   * The whole request, head and body, must arrive within this (node:http `requestTimeout`): a
   * backstop for bodies nothing reads (a request answered without its body, whose rest node:http
   * discards). Bodies that a function reads have their tighter per-app deadline.
   */
  requestTimeoutMs: number
  /** An idle kept-alive connection is closed after this (node:http `keepAliveTimeout`). */
  keepAliveTimeoutMs: number
  /** Open connections in all; one more is closed at once (node:http `maxConnections`). */
  maxConnections: number
  /** Open connections from one client address (an IPv6 client is its /64); one more is closed at once. */
  maxConnectionsPerAddress: number
}

/**
 * The defaults: HAProxy's usual `timeout http-request 10s` for heads; node:http's own 5 minutes
 * for whole requests; 65 s of keep-alive, longer than the 60 s idle timeout of the load balancers
 * usually in front (which must close first, or they may send on a connection being closed); 256
 * connections a client address, more than a browser (6 per host) or a proxy pool needs, and
 * 4096 in all, well under the descriptors a process gets (each also needs one to its node).
 */
export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 4096,
  maxConnectionsPerAddress: 256,
}

/** How often node:http looks for requests past their head or request deadline. */
const CHECK_INTERVAL_MS = 1000

/** The host's node:http server with `limits` applied; `onRefused` hears of every refused connection. */
export function createHostServer(
  limits: ServerLimits,
  listener: RequestListener,
  onRefused: (refusal: ConnectionRefusal) => void = () => {},
): Server {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    },
    listener,
  )
  server.keepAliveTimeout = limits.keepAliveTimeoutMs
  limitConnections(server, limits, onRefused)
  return server
}
