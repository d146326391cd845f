import { setTimeout as sleep } from 'node:timers/promises'
import {
  parseConversionStatus,
  thawPaths,
  type ConversionStatus,
} from '../../runtime/artifact/thaw-api.ts'
import { GENERATION_ANNOTATION } from '../../runtime/artifact/streaming-artifact.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import { OciError } from '../../runtime/oci/errors.ts'
import { readBody, type RegistryClient, type RegistryResponse } from '../../runtime/oci/remote/index.ts'
import { DeployError } from './errors.ts'

export interface WaitOptions {
  client: RegistryClient
  repository: string
  manifest: Digest
  /** Default 120 s. */
  timeoutMs?: number
  /** Between polls; default 250 ms. */
  intervalMs?: number
  /** Called when the conversion state changes (`pending`, `converting`, …, or `waiting` for referrers). */
  onState?: (state: string) => void
  signal?: AbortSignal
}

export interface ArtifactReady {
  artifact: Digest
  /** How it was learned: the edge's status endpoint, or the referrers API (any registry). */
  via: 'status' | 'referrers'
}

/**
 * Waits until the edge has made the image's streaming artifact. Polls the edge's status
 * (runtime/artifact/thaw-api.ts: GET /v2/<name>/_thaw/status/<digest>): `converted` ends the
 * wait, `skipped` and `failed` end it with the edge's reason, a 404 MANIFEST_UNKNOWN means "not
 * seen yet". A registry without that endpoint (any other 4xx) is asked for referrers with
 * artifactType application/vnd.thaw.streaming.v1 instead. Past `timeoutMs`: ARTIFACT_TIMEOUT,
 * which says the image itself is pushed.
 */
export async function waitForStreamingArtifact(o: WaitOptions): Promise<ArtifactReady> {
  try {
    return await poll(o)
  } catch (err) {
    // fetch and timers reject with a generic AbortError; callers match on their own reason.
    if (o.signal?.aborted) throw o.signal.reason
    throw err
  }
}

async function poll(o: WaitOptions): Promise<ArtifactReady> {
  const timeoutMs = o.timeoutMs ?? 120_000
  const deadline = Date.now() + timeoutMs
  const statusUrl = new URL(thawPaths.status(o.repository, o.manifest), o.client.registry)
  let useStatus = true
  let last = ''
  const report = (state: string) => {
    if (state === last) return
    last = state
    o.onState?.(state)
  }
  for (;;) {
    o.signal?.throwIfAborted()
    if (useStatus) {
      const status = await fetchStatus(o.client, o.repository, o.manifest, o.signal)
      if (status === 'unsupported') useStatus = false
      else if (status === 'unknown') report('pending')
      else {
        report(status.state)
        if (status.state === 'converted' && status.artifact)
          return { artifact: status.artifact, via: 'status' }
        if (status.state === 'skipped' || status.state === 'failed') {
          throw new DeployError(
            'ARTIFACT_FAILED',
            `the edge ${status.state} the conversion of ${o.repository}@${o.manifest}: ${status.reason ?? 'no reason given'}${status.code ? ` (${status.code})` : ''}`,
            { fault: status.state === 'skipped' ? 'user' : 'system' },
          )
        }
      }
    }
    if (!useStatus) {
      report('waiting for a referrer')
      const found = await o.client.referrers(o.repository, o.manifest, {
        artifactType: MediaType.thawStreaming,
        signal: o.signal,
      })
      const newest = found.sort((a, b) => generation(b) - generation(a))[0]
      if (newest) return { artifact: newest.digest, via: 'referrers' }
    }
    if (Date.now() >= deadline) {
      throw new DeployError(
        'ARTIFACT_TIMEOUT',
        `the image is pushed, but its streaming artifact did not appear within ${formatSeconds(timeoutMs)} (last state: ${last || 'unknown'}); ` +
          `is ${o.client.registry.origin} a thaw edge with streaming on? Check ${statusUrl.href}, or deploy with --no-wait`,
      )
    }
    await sleep(Math.min(o.intervalMs ?? 250, Math.max(0, deadline - Date.now())), undefined, {
      signal: o.signal,
    })
  }
}

/**
 * The edge's conversion status of an image: 'unknown' for a 404 MANIFEST_UNKNOWN (or a passing
 * 5xx), 'unsupported' when the registry has no `_thaw/status` (it is not a thaw edge).
 */
export async function fetchStatus(
  client: RegistryClient,
  repository: string,
  manifest: Digest,
  signal?: AbortSignal,
): Promise<ConversionStatus | 'unknown' | 'unsupported'> {
  const path = thawPaths.status(repository, manifest)
  let res: RegistryResponse
  try {
    res = await client.extension(repository, { method: 'GET', path, headers: { accept: 'application/json' }, signal })
  } catch (err) {
    // A passing failure (5xx after the client's retries): ask again.
    if (err instanceof OciError && err.status >= 500 && !signal?.aborted) return 'unknown'
    throw err
  }
  const text = (await readBody(res, 1024 * 1024, `GET ${path}`)).toString()
  if (res.status === 200) return parseConversionStatus(JSON.parse(text))
  if (res.status === 404 && errorCode(text) === 'MANIFEST_UNKNOWN') return 'unknown'
  return 'unsupported'
}

function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code
  } catch {
    return undefined
  }
}

function generation(d: { annotations?: Record<string, string> }): number {
  return Number(d.annotations?.[GENERATION_ANNOTATION] ?? 0) || 0
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`
}
