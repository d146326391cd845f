import { open } from 'node:fs/promises'

/** What the edge served (2xx answers) between two points of its request log. */
export interface EdgeTraffic {
  /** Prefetch bundle responses (`/_thaw/bundle/`). */
  bundles: number
  /** Blob GETs: range reads of streaming blobs and any whole-blob fetch. */
  blobReads: number
  /** Manifests, referrers, status: resolving the image. */
  other: number
  bytes: number
}

/** Byte offset of the end of the edge's log, to count what follows it. */
export async function logOffset(logFile: string): Promise<number> {
  const file = await open(logFile, 'r')
  try {
    return (await file.stat()).size
  } finally {
    await file.close()
  }
}

/**
 * Counts the edge's requests for `repository` logged after `from` (its one-line-per-request JSON
 * log: `{"msg":"request","method","path","status","bytes",…}`), until `to`.
 */
export async function edgeTraffic(logFile: string, repository: string, from: number, to?: number): Promise<EdgeTraffic> {
  const file = await open(logFile, 'r')
  let text: string
  try {
    const end = to ?? (await file.stat()).size
    const buffer = Buffer.alloc(Math.max(0, end - from))
    await file.read(buffer, 0, buffer.length, from)
    text = buffer.toString('utf8')
  } finally {
    await file.close()
  }
  const traffic: EdgeTraffic = { bundles: 0, blobReads: 0, other: 0, bytes: 0 }
  const prefix = `/v2/${repository}/`
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    let entry: { msg?: string; method?: string; path?: string; status?: number; bytes?: number }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      continue // a line cut at `to`
    }
    if (entry.msg !== 'request' || entry.method !== 'GET' || !entry.path?.startsWith(prefix)) continue
    if (!entry.status || entry.status >= 300) continue // e.g. the bundle's 404 before any profile
    traffic.bytes += entry.bytes ?? 0
    if (entry.path.includes('/_thaw/bundle/')) traffic.bundles++
    else if (entry.path.includes('/blobs/')) traffic.blobReads++
    else traffic.other++
  }
  return traffic
}
