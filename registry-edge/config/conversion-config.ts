import { z } from 'zod'
import { isRepositoryName } from '../../runtime/oci/index.ts'
import type { ConversionOptions } from '../convert/conversion.ts'

/**
 * The `conversion` part of the edge config (convert/README.md): whether the edge converts at all,
 * the default of every repository's `streaming` setting, how many conversions run at once (each
 * on a worker thread), the codec, and the limits images are checked against.
 */
export const conversionConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  streaming: z.boolean().default(true),
  concurrency: z.number().int().min(1).max(64).default(1),
  codec: z.enum(['zstd', 'gzip']).optional(),
  level: z.number().int().min(1).max(19).optional(),
  profiledLevel: z.number().int().min(1).max(19).optional(),
  limits: z
    .strictObject({
      platforms: z
        .array(z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/))
        .min(1)
        .optional(),
      maxLayers: z.number().int().positive().optional(),
      maxLayerBytes: z.number().int().positive().optional(),
      maxImageBytes: z.number().int().positive().optional(),
      maxLayerUncompressedBytes: z.number().int().positive().optional(),
      maxImageUncompressedBytes: z.number().int().positive().optional(),
      maxLayerEntries: z.number().int().positive().optional(),
      maxImageEntries: z.number().int().positive().optional(),
      allowDevices: z.boolean().optional(),
    })
    .optional(),
  /**
   * Conversion before any host asks: the tags of these repositories are listed every
   * `intervalSeconds` (upstream, in proxy mode) and new images converted.
   */
  schedule: z
    .strictObject({
      intervalSeconds: z.number().min(1).max(86_400).default(300),
      repositories: z
        .array(
          z.string().refine(isRepositoryName, {
            message: 'a repository name, e.g. ci/app (lowercase, no tag or registry)',
          }),
        )
        .min(1)
        .max(1000),
    })
    .optional(),
})

export type ConversionConfig = z.infer<typeof conversionConfigSchema>

/** The ConversionOptions of a parsed config, or undefined when conversion is off. */
export function conversionOptionsOf(config: ConversionConfig): ConversionOptions | undefined {
  if (!config.enabled) return undefined
  const { streaming, concurrency, codec, level, profiledLevel, limits, schedule } = config
  const defined = Object.fromEntries(
    Object.entries(limits ?? {}).filter(([, v]) => v !== undefined),
  )
  return {
    streaming,
    concurrency,
    codec,
    level,
    profiledLevel,
    limits: defined,
    ...(schedule && {
      schedule: {
        intervalMs: schedule.intervalSeconds * 1000,
        repositories: schedule.repositories,
      },
    }),
  }
}
