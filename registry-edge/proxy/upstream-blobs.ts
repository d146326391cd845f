import { OciError, type Digest } from '../../runtime/oci/index.ts'
import type { RegistryClient } from '../../runtime/oci/remote/index.ts'
import type { ByteRange } from '../backend/registry-backend.ts'
import type { EdgeMetrics } from '../observability/edge-metrics.ts'
import type { ChunkSource } from './chunk-cache.ts'

/**
 * The ChunkSource of a blob in an upstream repository: one range GET, its body streamed as it
 * arrives. Records upstream latency (to the response headers) and bytes received. A registry
 * that ignores Range (200 with everything) is tolerated: the bytes before `start` are skipped and
 * the body is dropped after `end`.
 */
export function upstreamBlobSource(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  metrics: EdgeMetrics,
): ChunkSource {
  return async (range, signal) => {
    const started = performance.now()
    const res = await client.getBlob(repository, digest, { range, signal })
    metrics.upstreamDuration.observe({ method: 'GET' }, (performance.now() - started) / 1000)
    if (res.status === 206 && res.range?.start !== range.start) {
      res.body.destroy()
      throw new OciError('RANGE_INVALID', `upstream answered bytes ${res.range?.start}-, asked ${range.start}-`, { status: 502 })
    }
    const skip = res.status === 200 ? range.start : 0
    return counted(res.body as AsyncIterable<Buffer>, skip, range, metrics)
  }
}

async function* counted(
  body: AsyncIterable<Buffer>,
  skip: number,
  range: ByteRange,
  metrics: EdgeMetrics,
): AsyncIterable<Uint8Array> {
  let toSkip = skip
  let left = range.end - range.start + 1
  for await (const part of body) {
    metrics.upstreamBytes.inc(part.byteLength)
    let bytes = part
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, bytes.byteLength)
      bytes = bytes.subarray(dropped)
      toSkip -= dropped
    }
    if (bytes.byteLength === 0) continue
    if (bytes.byteLength >= left) {
      yield bytes.subarray(0, left)
      return // leaving the loop destroys the rest of a 200's body
    }
    left -= bytes.byteLength
    yield bytes
  }
}
