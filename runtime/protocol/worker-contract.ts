/**
 * The process contract between a host (thaw's host, or the local runner `thaw start`) and the
 * functions worker (runtime/worker). These names are the whole interface besides the messages in
 * worker-messages.ts; the worker imports only this file and the message types, so it stays small.
 *
 * Start:   `node <worker.mjs>` with the env below plus the app's settings.
 * Control: the worker connects to THAW_CONTROL (a unix socket the host listens on) and speaks
 *          newline-delimited JSON (one message per line, UTF-8).
 * Invoke:  the host sends plain HTTP/1.1 requests to THAW_LISTEN with the headers below.
 */

/** Version of the control protocol, sent in `hello`. Bump on incompatible changes. */
export const WORKER_PROTOCOL_VERSION = 1

export const WorkerEnv = {
  /** Path of the unix socket the host listens on for the control channel. Required. */
  control: 'THAW_CONTROL',
  /** Where the worker serves invocations: a unix socket path (contains "/") or host:port. Required. */
  listen: 'THAW_LISTEN',
  /** The app directory (Azure's name). Default: the worker's cwd. */
  scriptRoot: 'AzureWebJobsScriptRoot',
  /**
   * Optional override of package.json#main (a glob relative to the script root). The local runner
   * uses it to load TypeScript sources (src/functions/*.ts) where main names the build output.
   */
  main: 'THAW_MAIN',
  /**
   * Milliseconds. When set, the worker outlives its host: a closed control channel is connected
   * again this often (and hears hello and ready again) instead of shutting the worker down.
   * thaw's host sets it, so its nodes go on through a restart of the host (host/README.md).
   */
  controlReconnect: 'THAW_CONTROL_RECONNECT_MS',
  /** The request body limit in bytes (Azure's setting; default 100 MB). */
  bodyLimit: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
  /**
   * Which invocation events the worker sends: `all` (the default: invocation-start, and
   * invocation-end of every invocation, which `thaw start` prints as Azure's host does) or
   * `failed` (only the invocation-end of a failed invocation, with its error). thaw's host sets
   * `failed`: it learns each answer's status and duration from the answer itself, and two
   * control messages per request were a good part of its cost on the warm path.
   */
  invocationEvents: 'THAW_INVOCATION_EVENTS',
} as const

export const WorkerHeaders = {
  /** The function to invoke (its registered name). Required on every invocation request. */
  function: 'x-thaw-function',
  /** The route parameters the host matched, as JSON `{"name": "value" | null}` (see encodeRouteParams). */
  routeParams: 'x-thaw-route-params',
  /** The invocation id; the worker makes one (a UUID) when absent. Azure's header name. */
  invocationId: 'x-ms-invocation-id',
} as const

/**
 * The Azure Functions host version thaw presents itself as (to `@azure/functions-core`.hostVersion
 * and in custom handlers' X-Azure-Functions-HostVersion): new enough for HTTP streaming (4.28) and
 * log hooks (4.34).
 */
export const FUNCTIONS_HOST_VERSION = '4.1037.0'

/** Azure's default request body limit (HOST ScriptConstants.DefaultMaxRequestBodySize). */
export const DEFAULT_BODY_LIMIT = 104_857_600

/**
 * Route parameters travel in a header, and header values must be ASCII: JSON with every
 * non-ASCII character written as a \uXXXX escape, which JSON.parse reads back unchanged.
 * A null value is an optional parameter that did not match (Azure sends it as null too).
 */
export function encodeRouteParams(params: Record<string, string | null>): string {
  return JSON.stringify(params).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** The reverse of encodeRouteParams; throws on anything but an object of strings and nulls. */
export function decodeRouteParams(header: string | undefined): Record<string, string | null> {
  if (header === undefined || header === '') return {}
  const value: unknown = JSON.parse(header)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${WorkerHeaders.routeParams} must be a JSON object`)
  }
  const out: Record<string, string | null> = {}
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && typeof v !== 'string') {
      throw new TypeError(`${WorkerHeaders.routeParams}: "${k}" must be a string or null`)
    }
    out[k] = v
  }
  return out
}
