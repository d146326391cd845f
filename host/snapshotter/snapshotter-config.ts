import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { DEFAULT_KEEPER_SOCKET } from '../fuse/fuse-keeper.ts'

const httpUrl = z
  .string()
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')

/**
 * `thaw snapshotter --config FILE` (JSON). Every field has a default; flags override the file.
 * @example {"edges": ["http://thaw-edge.thaw.svc:5000"], "dockerConfig": "/etc/thaw/config.json"}
 */
export const snapshotterConfigSchema = z
  .object({
    /** The gRPC socket containerd's `[proxy_plugins.thaw]` points at. */
    socket: z.string().min(1).default('/run/thaw/snapshotter.sock'),
    /** Metadata, overlay snapshots, the frame cache and the lazy mounts. */
    root: z.string().min(1).default('/var/lib/thaw/snapshotter'),
    /** Edges the images are pulled through, nearest first; an image's own registry comes last. */
    edges: z.array(httpUrl).default([]),
    /** Bound of the frame cache in bytes (decoded). */
    cacheBytes: z
      .number()
      .int()
      .positive()
      .default(10 * 2 ** 30),
    /** Fetch the rest of a lazily mounted image in the background (default true). */
    background: z.boolean().default(true),
    /**
     * Record the first cold start of an image the edge has no profile of, and upload it to the
     * edge as the image's default profile (default true; needs push on the repository there).
     */
    recordProfiles: z.boolean().default(true),
    /**
     * How long a container's start is recorded, from its first file open (default
     * THAW_RECORD_LIMIT_MS, else 10 s); also when its read-ahead widens and the rest of the image
     * begins to be fetched.
     */
    recordLimitMs: z.number().int().positive().optional(),
    /**
     * Hand the lazy mounts' FUSE connections to thaw-fuse-keeper (default true): running
     * containers keep their image through a restart of the snapshotter, which serves it again.
     */
    keepMounts: z.boolean().default(true),
    /** The keeper's socket (shared by every thaw process of the machine). */
    keeperSocket: z.string().min(1).default(DEFAULT_KEEPER_SOCKET),
    /** Registry credentials by host, from a docker config.json (or a mounted image-pull secret). */
    dockerConfig: z.string().min(1).optional(),
    /** `host:port` of a plain-HTTP `/metrics` endpoint (Prometheus); none by default. */
    metricsAddress: z
      .string()
      .regex(/^[^\s:]*:\d+$/, 'must be host:port')
      .optional(),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  })
  .strict()

export type SnapshotterConfig = z.infer<typeof snapshotterConfigSchema>

export function parseSnapshotterConfig(value: unknown, source = 'config'): SnapshotterConfig {
  const parsed = snapshotterConfigSchema.safeParse(value)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  throw new ThawError('SNAPSHOTTER_CONFIG_INVALID', `${source}: ${problems.join('; ')}`, {
    fault: 'user',
  })
}

export async function readSnapshotterConfig(file: string): Promise<Record<string, unknown>> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'))
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('not a JSON object')
    return value as Record<string, unknown>
  } catch (err) {
    throw new ThawError('SNAPSHOTTER_CONFIG_INVALID', `${file}: ${(err as Error).message}`, {
      fault: 'user',
    })
  }
}
