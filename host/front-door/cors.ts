import type { IncomingMessage, ServerResponse } from 'node:http'

export interface CorsOptions {
  /** Allowed origins; "*" allows any. */
  origins: string[]
  credentials: boolean
}

/**
 * func start's CORS (`--cors`, Host.CORS, Host.CORSCredentials; ASP.NET's CORS middleware): for
 * an allowed Origin, answer preflights (OPTIONS with Access-Control-Request-Method) with 204 and
 * add Access-Control-Allow-Origin to every response. With credentials the origin is echoed (a
 * wildcard is not allowed with credentials). Returns true when the request was a preflight and is
 * answered.
 */
export function applyCors(
  options: CorsOptions,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const origin = req.headers.origin
  if (!origin) return false
  const any = options.origins.includes('*')
  const allowed = any || options.origins.some((o) => o.toLowerCase() === origin.toLowerCase())
  if (!allowed) return false
  res.setHeader('access-control-allow-origin', any && !options.credentials ? '*' : origin)
  if (!any || options.credentials) res.setHeader('vary', 'Origin')
  if (options.credentials) res.setHeader('access-control-allow-credentials', 'true')
  const method = req.headers['access-control-request-method']
  if (req.method !== 'OPTIONS' || !method) return false
  res.setHeader('access-control-allow-methods', method)
  const headers = req.headers['access-control-request-headers']
  if (headers) res.setHeader('access-control-allow-headers', headers)
  res.writeHead(204)
  res.end()
  return true
}

/**
 * An app's CORS from its settings, as Azure's host reads them on Linux and in containers
 * (EnvironmentSettingNames: WEBSITE_CORS_ALLOWED_ORIGINS, a JSON array or comma-separated list;
 * WEBSITE_CORS_SUPPORT_CREDENTIALS, true/false). Undefined when no origin is allowed.
 */
export function corsFromSettings(
  settings: Readonly<Record<string, string | undefined>>,
): CorsOptions | undefined {
  const raw = settings.WEBSITE_CORS_ALLOWED_ORIGINS?.trim()
  if (!raw) return undefined
  let origins: string[]
  try {
    const list: unknown = raw.startsWith('[') ? JSON.parse(raw) : undefined
    origins = Array.isArray(list) ? list.map(String) : raw.split(',')
  } catch {
    origins = raw.split(',')
  }
  origins = origins.map((o) => o.trim()).filter(Boolean)
  if (origins.length === 0) return undefined
  const credentials = settings.WEBSITE_CORS_SUPPORT_CREDENTIALS?.toLowerCase() === 'true'
  return { origins, credentials }
}
