import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { authConfigSchema } from '../auth/auth-config.ts'
import { DEFAULT_UPLOAD_LIMITS } from '../store/upload-limits.ts'
import { conversionConfigSchema } from './conversion-config.ts'
import { GC_CONFIG_DEFAULTS, gcConfigSchema } from './gc-config.ts'
import { parseWithZod } from './parse-with-zod.ts'
import { UPLOAD_CONFIG_DEFAULTS, uploadConfigSchema } from './upload-config.ts'

/**
 * The `thaw edge` config: a JSON file (`--config`), overridden field by field by flags.
 *
 *   {
 *     "host": "0.0.0.0", "port": 5000, "region": "eu-west", "store": "/var/lib/thaw/edge",
 *     "deletion": true, "uploadTtlSeconds": 3600,
 *     "uploads": { "maxBlobBytes": 4294967296, "maxSessions": 1024, "maxSessionsPerClient": 64,
 *                  "sweepIntervalSeconds": 60 },           // see config/upload-config.ts
 *     "auth": { "users": {…}, "access": […] },           // see auth/auth-config.ts
 *     "upstream": "http://registry.internal:5000",      // proxy mode; `store` then holds the cache
 *     "proxy": { "tagTtlSeconds": 30, "memoryCacheMiB": 256, "diskCacheMiB": 10240,
 *                "fillConcurrency": 2, "username": "…", "password": "…",
                "publishUpstream": true }                  // all optional
 *     "conversion": { "enabled": true, "streaming": true, "concurrency": 1, "codec": "zstd",
 *                     "limits": { "maxLayers": 128, … },
 *                     "schedule": { "repositories": ["ci/app"], "intervalSeconds": 300 } }
 *                                                        // see convert/README.md; all optional
 *     "gc": { "intervalSeconds": 3600, "graceSeconds": 3600, "keepGenerations": 2,
 *             "bundleCacheMiB": 2048, "compactProfileRuns": true,
 *             "deleteUntagged": false }                  // see config/gc-config.ts
 *   }
 */
export const edgeConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(5000),
  store: z.string().min(1).default('.thaw/edge'),
  upstream: z.url({ protocol: /^https?$/ }).optional(),
  region: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a region is 1-63 of A-Za-z0-9._- (e.g. eu-west)')
    .default('local'),
  deletion: z.boolean().default(true),
  /** An upload session with no request for this long is removed (checked while running). */
  uploadTtlSeconds: z.number().int().positive().default(DEFAULT_UPLOAD_LIMITS.idleTtlMs / 1000),
  uploads: uploadConfigSchema.default(UPLOAD_CONFIG_DEFAULTS),
  auth: authConfigSchema.optional(),
  proxy: z
    .strictObject({
      tagTtlSeconds: z.number().nonnegative().default(30),
      memoryCacheMiB: z.number().positive().default(256),
      diskCacheMiB: z.number().positive().default(10_240),
      fillConcurrency: z.number().int().min(0).max(64).default(2),
      /** Credentials for the upstream (Basic, or to obtain its Bearer tokens). */
      username: z.string().min(1).optional(),
      password: z.string().optional(),
      /**
       * Push the edge's streaming artifacts and profiles to the upstream (they are kept in the
       * edge's own store when the upstream refuses them). False: keep them there always.
       */
      publishUpstream: z.boolean().default(true),
    })
    .default({
      tagTtlSeconds: 30,
      memoryCacheMiB: 256,
      diskCacheMiB: 10_240,
      fillConcurrency: 2,
      publishUpstream: true,
    }),
  conversion: conversionConfigSchema.default({ enabled: true, streaming: true, concurrency: 1 }),
  gc: gcConfigSchema.default(GC_CONFIG_DEFAULTS),
})

export type EdgeConfig = z.infer<typeof edgeConfigSchema>

export function parseEdgeConfig(input: unknown): EdgeConfig {
  return parseWithZod(edgeConfigSchema, input, 'edge config')
}

/** Reads a JSON config file; unreadable or malformed files are user errors naming the file. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ThawError('CONFIG_INVALID', `cannot read config ${path}: ${(err as Error).message}`, { fault: 'user' })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ThawError('CONFIG_INVALID', `config ${path} is not valid JSON: ${(err as Error).message}`, { fault: 'user' })
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ThawError('CONFIG_INVALID', `config ${path} must be a JSON object`, { fault: 'user' })
  }
  return value as Record<string, unknown>
}
