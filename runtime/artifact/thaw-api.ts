import { z } from 'zod'
import { isDigest, type Digest } from '../oci/digest.ts'

/**
 * thaw's registry extensions, under `/v2/<name>/_thaw/` (distribution-spec extensions/README.md
 * reserves `_<ns>` path components). Shared by the edge (serves them), the host and the CLI.
 *
 *   GET  /v2/<name>/_thaw/status/<manifest digest>    ConversionStatus (404 MANIFEST_UNKNOWN)
 *   GET  /v2/<name>/_thaw/settings                    RepositorySettings
 *   PUT  /v2/<name>/_thaw/settings                    RepositorySettings → the stored settings
 *   POST /v2/<name>/_thaw/profiles/<manifest digest>  body: a Profile (runtime/profile)
 *                                                     → 201 { profile: digest, runs: n }
 *   GET  /v2/<name>/_thaw/profiles/<manifest digest>[?workload=<w>]
 *                                                     the workload's merged Profile (404 when none)
 *   GET  /v2/<name>/_thaw/bundle/<manifest digest>[?workload=<w>]
 *                                                     the prefetch bundle (bundle.ts) of the newest
 *                                                     artifact and the workload's profile (else
 *                                                     the unnamed default's): 200/206 with ETag,
 *                                                     Range; 404 when neither has a profile yet
 *
 * A workload is the host's name of what ran (runtime/profile `workload`: the app, or
 * `<app>/<function>` for a cold start of one function); absent or '' is the unnamed default.
 */
export const thawPaths = {
  status: (repository: string, manifest: Digest) => `/v2/${repository}/_thaw/status/${manifest}`,
  settings: (repository: string) => `/v2/${repository}/_thaw/settings`,
  profiles: (repository: string, manifest: Digest, workload = '') =>
    `/v2/${repository}/_thaw/profiles/${manifest}${workloadQuery(workload)}`,
  bundle: (repository: string, manifest: Digest, workload = '') =>
    `/v2/${repository}/_thaw/bundle/${manifest}${workloadQuery(workload)}`,
}

function workloadQuery(workload: string): string {
  return workload === '' ? '' : `?workload=${encodeURIComponent(workload)}`
}

export type ConversionState = 'pending' | 'converting' | 'converted' | 'skipped' | 'failed'

export interface ConversionStatus {
  manifest: Digest
  state: ConversionState
  /** Why it was skipped or failed, in words a user can act on. */
  reason?: string
  /** Stable code of the reason (e.g. TAR_UNSAFE_PATH, PLATFORM_UNSUPPORTED). */
  code?: string
  /** The newest streaming artifact, once converted. */
  artifact?: Digest
  generation?: number
  /** The merged profile the newest artifact was laid out by. */
  profile?: Digest
  /** ISO 8601 times. */
  updatedAt: string
}

export interface RepositorySettings {
  /** Convert images pushed to this repository (default true). */
  streaming: boolean
}

const digest = z.string().refine(isDigest, 'must be sha256:<64 lowercase hex>')
const statusSchema = z.looseObject({
  manifest: digest,
  state: z.enum(['pending', 'converting', 'converted', 'skipped', 'failed']),
  reason: z.string().optional(),
  code: z.string().optional(),
  artifact: digest.optional(),
  generation: z.number().int().nonnegative().optional(),
  profile: digest.optional(),
  updatedAt: z.string(),
})

export function parseConversionStatus(value: unknown): ConversionStatus {
  return statusSchema.parse(value) as ConversionStatus
}

export const repositorySettingsSchema = z.object({ streaming: z.boolean() }).strict()
