import type { MiddlewareHandler } from 'hono'
import type { EdgeEnv } from '../edge-env.ts'
import type { EdgeLogger } from './edge-logger.ts'
import type { EdgeMetrics } from './edge-metrics.ts'

/**
 * One log line and the request metrics per request, taken when the response has been fully
 * sent (under @hono/node-server, on the Node response's 'close'), so `duration_ms` includes
 * streaming the body; `aborted: true` marks a client that went away before the end. `bytes` is
 * the response's Content-Length (every edge response declares one).
 */
export function requestLog(logger: EdgeLogger, metrics: EdgeMetrics): MiddlewareHandler<EdgeEnv> {
  return async (c, next) => {
    const started = performance.now()
    await next()
    const { method } = c.req
    const status = c.res.status
    const bytes = Number(c.res.headers.get('content-length') ?? 0)
    const route = c.get('route')?.kind ?? otherRoute(c.req.path)
    const done = (aborted: boolean) => {
      const seconds = (performance.now() - started) / 1000
      metrics.requests.inc({ method, route, status: String(status) })
      metrics.requestDuration.observe({ method, route }, seconds)
      const served = method === 'GET' && status >= 200 && status < 300
      if (served && (route === 'blobs' || route === 'manifests' || route === 'extension')) metrics.bytesServed.inc({ kind: route }, bytes)
      const line: Record<string, unknown> = { method, path: c.req.path, status, bytes, duration_ms: round(seconds * 1000) }
      if (aborted) line.aborted = true
      logger.info('request', line)
    }
    const outgoing = c.env?.outgoing
    if (outgoing && !outgoing.closed) outgoing.once('close', () => done(!outgoing.writableFinished))
    else done(false)
  }
}

function otherRoute(path: string): string {
  if (path === '/healthz' || path === '/metrics' || path === '/token') return path.slice(1)
  return 'other'
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
