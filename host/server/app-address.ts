import { isAppName } from '../apps/app-spec.ts'

/** Which app a request is for, and the path the app sees. */
export interface AppAddress {
  app: string
  /** Path and query as the app sees them (the `/<app>` prefix removed for path addressing). */
  path: string
  by: 'host' | 'path'
}

/**
 * Host-name addressing wins: `Host: <app>.<domain>[:port]` (so `http://myapp.localhost:7071/api/x`
 * works: browsers and curl resolve *.localhost to loopback, RFC 6761 §6.3). Otherwise the first
 * path segment names the app: `/<app>/api/x`. Reserved first segments (admin, metrics, healthz)
 * never reach here.
 */
export function appAddress(hostHeader: string | undefined, rawPath: string, domain: string): AppAddress | undefined {
  const host = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '')
  const suffix = `.${domain.toLowerCase()}`
  if (host.endsWith(suffix)) {
    const label = host.slice(0, -suffix.length)
    if (isAppName(label)) return { app: label, path: rawPath, by: 'host' }
  }
  const m = /^\/([^/?#]+)(\/[^?#]*)?(\?.*)?$/.exec(rawPath)
  if (!m) return undefined
  const name = decodeURIComponent(m[1]!).toLowerCase()
  if (!isAppName(name)) return undefined
  return { app: name, path: `${m[2] ?? '/'}${m[3] ?? ''}`, by: 'path' }
}
