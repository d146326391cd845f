import { describeError } from '../../runtime/errors.ts'
import type { FrameLoader } from './frame-loader.ts'

export interface BackgroundFetchOptions {
  /** Compressed bytes per range request (default 8 MiB, formats.md §8.2). */
  runBytes?: number
  signal?: AbortSignal
  warn?: (message: string) => void
}

/**
 * Fetches every frame of the image that is not yet present, one range request at a time (low
 * priority), waiting whenever on-demand reads are under way so it never competes with them
 * (stargz-snapshotter's BackgroundTaskManager does the same). Resolves when everything is present,
 * or when aborted. A failed run is left for on-demand reads (and a later mount) to retry.
 */
export async function backgroundFetch(
  loader: FrameLoader,
  frameCounts: readonly number[],
  options: BackgroundFetchOptions = {},
): Promise<{ complete: boolean }> {
  const runBytes = options.runBytes ?? 8 * 1024 * 1024
  let complete = true
  for (const [b, count] of frameCounts.entries()) {
    const blob = loader.blobs[b]!
    let i = 0
    while (i < count) {
      if (options.signal?.aborted) return { complete: false }
      await loader.idle()
      const run = loader.missingRun(b, i, runBytes)
      if (!run) break
      try {
        await loader.ensure(b, run.first, run.last, false)
      } catch (err) {
        complete = false
        options.warn?.(`background fetch of blob ${blob.hex.slice(0, 12)}: ${describeError(err)}`)
      }
      i = run.last + 1
    }
  }
  return { complete }
}
