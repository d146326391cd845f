import { DeployError } from './errors.ts'

/** A function of a revision, as the host's admin API gives it (apps/revision.ts RevisionFunction). */
export interface HostFunction {
  name: string
  /** The route with its prefix: `api/hello`. */
  path: string
  methods: string[] | null
  authLevel: string
}

/** What the host answers to a change of an app (server/admin-revisions.ts rolloutAnswer). */
export interface RolloutAnswer {
  app: string
  created: boolean
  restarted: boolean
  revision: {
    number: number
    image: string
    createdAt: string
    cause: { kind: string; to?: number }
    functions?: HostFunction[]
  }
}

/**
 * The admin API of a thaw host (host/README.md "Admin API"), with the master key in
 * `x-functions-key`. Answers are JSON; an error answer throws HOST_REJECTED with the host's code
 * and message (REVISION_FAILED, with the node's log lines, when a deploy failed its health
 * gate), and a host that does not answer HOST_UNREACHABLE: both one line a user can act on.
 */
export async function callHostAdmin<T>(
  hostUrl: string,
  masterKey: string,
  method: string,
  path: string,
  body?: unknown,
  options: { signal?: AbortSignal } = {},
): Promise<{ status: number; body: T }> {
  const url = new URL(path, hostUrl)
  let res: Response
  try {
    res = await fetch(url, {
      method,
      headers: {
        'x-functions-key': masterKey,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
    })
  } catch (err) {
    if (options.signal?.aborted) throw err
    const why = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message
    throw new DeployError(
      'HOST_UNREACHABLE',
      `cannot reach the host at ${url.origin} (${why}): is "thaw host" running there? (--host URL)`,
      { cause: err },
    )
  }
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {
    parsed = text
  }
  if (!res.ok) {
    const error = (parsed as { error?: HostErrorBody } | undefined)?.error
    if (error?.code === 'REVISION_FAILED') {
      const logs = error.logs?.length
        ? `\nthe node's log:\n${error.logs.map((l) => `  | ${l}`).join('\n')}`
        : ''
      throw new DeployError('REVISION_FAILED', `${error.message}${logs}`)
    }
    const detail = error
      ? `${error.code ?? ''}${error.code ? ': ' : ''}${error.message ?? ''}`
      : text.slice(0, 200)
    throw new DeployError(
      'HOST_REJECTED',
      `the host answered ${res.status} to ${method} ${url.pathname}: ${detail}`,
      {
        fault: res.status >= 500 ? 'system' : 'user',
      },
    )
  }
  return { status: res.status, body: parsed as T }
}

interface HostErrorBody {
  code?: string
  message?: string
  logs?: string[]
}

/**
 * Deploys a new revision of an app (`POST /admin/apps/<name>/revisions`, made if it is new):
 * the image by digest, settings merged into the current ones (`unset` removes). Resolves once
 * the host started a node of it and loaded its functions; throws REVISION_FAILED when that
 * failed (the app's previous revision keeps serving).
 */
export async function deployRevision(
  hostUrl: string,
  masterKey: string,
  name: string,
  change: { image: string; settings?: Record<string, string>; unset?: string[] },
  options: { signal?: AbortSignal } = {},
): Promise<RolloutAnswer> {
  const path = `/admin/apps/${encodeURIComponent(name)}/revisions`
  return (await callHostAdmin<RolloutAnswer>(hostUrl, masterKey, 'POST', path, change, options))
    .body
}

/** Where an app's functions are reached on a host by path (`/<app>/<routePrefix>/`). */
export function appUrl(hostUrl: string, name: string, routePrefix = 'api'): string {
  const base = new URL(`/${name}/`, hostUrl)
  return routePrefix ? new URL(`${routePrefix}/`, base).href : base.href
}

/** A function's URL on a host by path: `<host>/<app>/<path>` (path with its route prefix). */
export function functionUrl(hostUrl: string, app: string, fn: Pick<HostFunction, 'path'>): string {
  return new URL(`/${app}/${fn.path}`, hostUrl).href.replace(/%7B/g, '{').replace(/%7D/g, '}')
}
