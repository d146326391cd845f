import { z } from 'zod'
import { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from '../store/upload-limits.ts'

const d = DEFAULT_UPLOAD_LIMITS

/**
 * The `uploads` part of the edge config (README "Uploads"): the largest blob a push may send,
 * how many upload sessions may be open at once in total and per client, and how often idle
 * sessions are looked for. How long a session may stay idle is the top-level `uploadTtlSeconds`.
 */
export const uploadConfigSchema = z.strictObject({
  maxBlobBytes: z.number().int().positive().default(d.maxBlobBytes),
  maxSessions: z.number().int().positive().default(d.maxSessions),
  maxSessionsPerClient: z.number().int().positive().default(d.maxSessionsPerClient),
  sweepIntervalSeconds: z
    .number()
    .positive()
    .max(86_400)
    .default(d.sweepIntervalMs / 1000),
})

export type UploadConfig = z.infer<typeof uploadConfigSchema>

export const UPLOAD_CONFIG_DEFAULTS: UploadConfig = uploadConfigSchema.parse({})

export function uploadLimitsOf(config: UploadConfig, uploadTtlSeconds: number): UploadLimits {
  return {
    maxBlobBytes: config.maxBlobBytes,
    maxSessions: config.maxSessions,
    maxSessionsPerClient: config.maxSessionsPerClient,
    idleTtlMs: uploadTtlSeconds * 1000,
    sweepIntervalMs: config.sweepIntervalSeconds * 1000,
  }
}
