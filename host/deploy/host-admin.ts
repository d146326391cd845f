import { DeployError } from './errors.ts'

export interface HostApp {
  name: string
  /** With its registry host, by digest: `127.0.0.1:5000/apps/hello@sha256:…`. */
  image: string
  settings?: Record<string, string>
}

/**
 * Creates or replaces an app on a thaw host: `PUT /admin/apps/<name>` with `{name, image,
 * settings?}` and the master key in `x-functions-key` (the host's admin API). Resolves with the
 * host's answer (the stored app) and whether it was created (201) or updated (200).
 */
export async function putHostApp(
  hostUrl: string,
  masterKey: string,
  app: HostApp,
  options: { signal?: AbortSignal } = {},
): Promise<{ created: boolean; app: unknown }> {
  const url = new URL(`/admin/apps/${encodeURIComponent(app.name)}`, hostUrl)
  let res: Response
  try {
    res = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-functions-key': masterKey },
      body: JSON.stringify(app),
      signal: options.signal,
    })
  } catch (err) {
    if (options.signal?.aborted) throw err
    throw new DeployError(
      'HOST_UNREACHABLE',
      `cannot reach the host at ${url.origin}: ${(err as Error).message}`,
      { cause: err },
    )
  }
  const text = await res.text()
  let body: unknown
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = text
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error
    const detail = error
      ? `${error.code ?? ''}${error.code ? ': ' : ''}${error.message ?? ''}`
      : text.slice(0, 200)
    throw new DeployError(
      'HOST_REJECTED',
      `the host answered ${res.status} to PUT ${url.pathname}: ${detail}`,
      {
        fault: res.status >= 500 ? 'system' : 'user',
      },
    )
  }
  return { created: res.status === 201, app: body }
}

/** Where an app's functions are reached on a host by path (`/<app>/<routePrefix>/`). */
export function appUrl(hostUrl: string, name: string, routePrefix = 'api'): string {
  const base = new URL(`/${name}/`, hostUrl)
  return routePrefix ? new URL(`${routePrefix}/`, base).href : base.href
}
