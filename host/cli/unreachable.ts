/** What each connection failure means, by its errno or undici code. */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'no such host name',
  EAI_AGAIN: 'the host name could not be resolved now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_SOCKET: 'the connection failed',
}

interface NetError {
  code?: unknown
  address?: unknown
  port?: unknown
  hostname?: unknown
  cause?: unknown
  errors?: unknown
}

/**
 * One line for an error that is a registry, edge or host thaw could not reach (fetch's
 * "fetch failed" and undici's errors carry the socket's errno somewhere in their causes), or
 * undefined for any other error. Such an error is the user's to fix (a wrong URL, a server not
 * started), so the CLI prints this line, not a stack.
 */
export function describeUnreachable(err: unknown): string | undefined {
  const seen = new Set<unknown>()
  const queue: unknown[] = [err]
  while (queue.length > 0) {
    const e = queue.shift() as NetError | undefined
    if (!e || typeof e !== 'object' || seen.has(e)) continue
    seen.add(e)
    const reason = typeof e.code === 'string' ? REASONS[e.code] : undefined
    if (reason) return `cannot reach ${where(e) ?? 'the server'} (${reason})`
    queue.push(e.cause)
    if (Array.isArray(e.errors)) queue.push(...e.errors)
  }
  return undefined
}

function where(e: NetError): string | undefined {
  const host =
    typeof e.address === 'string'
      ? e.address
      : typeof e.hostname === 'string'
        ? e.hostname
        : undefined
  if (!host) return undefined
  const h = host.includes(':') ? `[${host}]` : host
  return typeof e.port === 'number' ? `${h}:${e.port}` : h
}
