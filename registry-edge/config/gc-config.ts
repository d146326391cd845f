import { z } from 'zod'
import type { GcPolicy } from '../gc/edge-gc.ts'

/**
 * The `gc` part of the edge config (registry-edge README "Garbage collection"): how often the
 * edge collects while it runs, how young content must be to be spared, how many streaming
 * artifact generations each image keeps, the bundle cache's bound, and whether profile runs are
 * compacted into their merged profile.
 */
export const gcConfigSchema = z.strictObject({
  /** Seconds between collections in the edge process; 0 turns periodic collection off. */
  intervalSeconds: z
    .number()
    .nonnegative()
    .max(30 * 86_400)
    .default(3600),
  /** Content, links and manifests younger than this are never collected. */
  graceSeconds: z.number().nonnegative().default(3600),
  /** Streaming artifact generations kept per image (the newest); at least 1. */
  keepGenerations: z.number().int().min(1).max(1000).default(2),
  /**
   * Remove image manifests (and their referrers) that no tag reaches, once older than the grace
   * period. Off by default, as in distribution: an image pushed by digest only is kept.
   */
  deleteUntagged: z.boolean().default(false),
  /** Bound of the prefetch bundle cache (`<store>/thaw/bundles`), least recently used out. */
  bundleCacheMiB: z.number().nonnegative().default(2048),
  /** Merge the profile runs of an image and workload into one run. */
  compactProfileRuns: z.boolean().default(true),
})

export type GcConfig = z.infer<typeof gcConfigSchema>

export const GC_CONFIG_DEFAULTS: GcConfig = gcConfigSchema.parse({})

export function gcPolicyOf(config: GcConfig): GcPolicy {
  return {
    intervalMs: config.intervalSeconds * 1000,
    graceMs: config.graceSeconds * 1000,
    keepGenerations: config.keepGenerations,
    deleteUntagged: config.deleteUntagged,
    bundleCacheBytes: config.bundleCacheMiB * 1024 * 1024,
    compactProfileRuns: config.compactProfileRuns,
  }
}
