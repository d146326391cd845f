import { request } from 'undici'
import { COLD_START_HEADER, parseColdStart, type ColdStartTimings } from '../pool/cold-start.ts'

export interface ColdCall {
  status: number
  body: string
  /** From sending the request to the first byte of the answer, measured here. */
  ttfbMs: number
  /** The host's own breakdown (x-thaw-cold-start); absent when the call was not a cold start. */
  timings?: ColdStartTimings
}

/** One GET, timed to the first byte of the answer, with the host's cold-start breakdown. */
export async function coldCall(url: string, signal?: AbortSignal): Promise<ColdCall> {
  const started = performance.now()
  const res = await request(url, { signal })
  const ttfbMs = performance.now() - started
  const body = await res.body.text()
  const header = res.headers[COLD_START_HEADER]
  return {
    status: res.statusCode,
    body,
    ttfbMs,
    timings: typeof header === 'string' ? parseColdStart(header) : undefined,
  }
}
