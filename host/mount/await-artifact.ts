import { setTimeout as sleep } from 'node:timers/promises'
import { pickStreamingArtifact } from '../../runtime/artifact/streaming-artifact.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import type { Descriptor } from '../../runtime/oci/schemas.ts'
import { fetchStatus } from '../deploy/wait-for-artifact.ts'
import { MountError } from './errors.ts'
import type { SourceSet } from './source-set.ts'

export interface AwaitArtifactOptions {
  /** How long to wait for an edge converting the image (0: do not wait). */
  timeoutMs: number
  signal?: AbortSignal
  warn?: (message: string) => void
  /** Between status polls (default 250 ms). */
  intervalMs?: number
}

/**
 * The newest streaming artifact of `manifest` among its referrers. An image nobody pushed through
 * an edge (CI pushed it straight to the registry behind a proxy edge) has none the first time it
 * is asked for; the edge starts converting it on that referrers request
 * (registry-edge/convert/convert-on-ask.ts). Then the edge's `_thaw/status` is polled until the
 * conversion ends, and the referrers are listed again. A source that is not a thaw edge, or a
 * conversion that is skipped or fails, ends the wait at once: IMAGE_NOT_STREAMABLE with the reason.
 */
export async function awaitStreamingArtifact(
  sources: SourceSet,
  reference: string,
  repository: string,
  manifest: Digest,
  o: AwaitArtifactOptions,
): Promise<Descriptor> {
  const list = () =>
    sources.call(
      `referrers of ${manifest}`,
      (s, signal) =>
        s.client.referrers(repository, manifest, { artifactType: MediaType.thawStreaming, signal }),
      { signal: o.signal },
    )
  const first = await list()
  const found = pickStreamingArtifact(first.value)
  if (found) return found
  const none = (why: string) =>
    new MountError('IMAGE_NOT_STREAMABLE', `${reference} cannot be mounted lazily: ${why}`)
  if (o.timeoutMs <= 0) throw none(`no streaming artifact refers to ${manifest}`)
  const edge = first.source
  o.warn?.(`no streaming artifact of ${manifest} yet: waiting for ${edge.url} to convert it`)
  const deadline = Date.now() + o.timeoutMs
  for (;;) {
    const status = await fetchStatus(edge.client, repository, manifest, o.signal)
    if (status === 'unsupported')
      throw none(`no streaming artifact refers to ${manifest}, and ${edge.url} is no thaw edge`)
    if (status !== 'unknown') {
      if (status.state === 'converted') break
      if (status.state === 'skipped' || status.state === 'failed') {
        const code = status.code ? ` (${status.code})` : ''
        throw none(
          `the edge ${status.state} its conversion: ${status.reason ?? 'no reason given'}${code}`,
        )
      }
    }
    if (Date.now() >= deadline)
      throw none(`${edge.url} did not convert ${manifest} within ${o.timeoutMs} ms`)
    await sleep(o.intervalMs ?? 250, undefined, { signal: o.signal })
  }
  const converted = pickStreamingArtifact((await list()).value)
  if (!converted) throw none(`${edge.url} converted ${manifest}, but no artifact refers to it`)
  return converted
}
