/**
 * Where a cold start's time went, in milliseconds:
 *   resolve   reference → manifest → streaming artifact (the mount's acquire)
 *   mount     the FUSE mount (0 when the image was mounted already)
 *   prefetch  replaying the prefetch bundle (0 without one)
 *   sandbox   overlay, config.json, OCI runtime start (the warm node's specialize)
 *   load      the node's process start → the app's `ready` (node, worker, the app's modules)
 *   first     dispatch of the first request → its response head
 *   total     the request's arrival → its response head (includes waiting for a warm node)
 */
export interface ColdStartTimings {
  resolve: number
  mount: number
  prefetch: number
  sandbox: number
  load: number
  first: number
  total: number
}

/**
 * A cold start's timings and the image data its mount fetched from the edge meanwhile (from the
 * acquire to the first response: the prefetch bundle and range requests; MountLease.fetched).
 */
export interface ColdStart extends ColdStartTimings {
  bytes: number
  requests: number
}

export const COLD_START_HEADER = 'x-thaw-cold-start'
export const COLD_START_PHASES = [
  'resolve',
  'mount',
  'prefetch',
  'sandbox',
  'load',
  'first',
  'total',
] as const

/** `resolve=12.3;mount=3.1;...;total=…;bytes=…;requests=…`: the header value (and the log line). */
export function formatColdStart(t: ColdStart): string {
  const phases = COLD_START_PHASES.map((k) => `${k}=${t[k].toFixed(1)}`)
  return [...phases, `bytes=${t.bytes}`, `requests=${t.requests}`].join(';')
}

export function parseColdStart(value: string): ColdStart {
  const out: Record<string, number> = {}
  for (const part of value.split(';')) {
    const [k, v] = part.split('=')
    if (k && v !== undefined) out[k.trim()] = Number(v)
  }
  return out as unknown as ColdStart
}
