import type { IncomingMessage } from 'node:http'
import { keyLevel } from '../router/index.ts'

/** The keys that open the host's `/metrics`. */
export interface MetricsKeys {
  master: string
  /** A key for scrapers only: it opens `/metrics` and nothing else. */
  metrics?: string
}

/** The challenge a 401 from `/metrics` carries (RFC 6750 §3). */
export const METRICS_CHALLENGE = 'Bearer realm="thaw host metrics"'

/**
 * Whether a request may read `/metrics`, which names every app and its traffic: the metrics key
 * or the master key, as `Authorization: Bearer <key>` (what Prometheus sends with `authorization:
 * { credentials_file: … }` in a scrape config) or in `x-functions-key` (as the admin API takes
 * it). Never `?code=`: scrape URLs end up in target lists and logs. Compared in constant time.
 */
export function mayReadMetrics(req: IncomingMessage, keys: MetricsKeys): boolean {
  const presented = bearer(req.headers.authorization) ?? one(req.headers['x-functions-key'])
  if (!presented) return false
  const system = keys.metrics === undefined ? undefined : { metrics: keys.metrics }
  const { level } = keyLevel(presented, undefined, { master: keys.master, system })
  return level === 'admin' || level === 'system'
}

function bearer(authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '')
  return m?.[1]
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value || undefined
}
