import { z } from 'zod'
import type { KeySet } from '../router/index.ts'
import { LocalRunnerError } from './errors.ts'
import type { RunnerEvent } from './generation.ts'

/** Options of createRunner(). Only scriptRoot is required. */
export interface RunnerOptions {
  /** The app folder (with host.json). */
  scriptRoot: string
  /** Port to listen on; 0 (the default) picks a free one. `thaw start` uses 7071. */
  port?: number
  /** Address to listen on; default 127.0.0.1 (as the newest func start). */
  host?: string
  /** App settings, applied over local.settings.json and over the process environment. */
  settings?: Record<string, string>
  /** Read local.settings.json (default true). */
  localSettings?: boolean
  /** Keys to enforce. Without keys, auth is skipped, as func start does without --enableAuth. */
  keys?: KeySet
  /** CORS origins ("*" for any). */
  cors?: string[]
  corsCredentials?: boolean
  /** Load only these functions (func start --functions). */
  functions?: string[]
  /** Restart on file changes, without dropping requests in flight (default false). */
  watch?: boolean
  /** Receives everything the runner reports (see log-format.ts to print it like func start). */
  logger?: (event: RunnerEvent) => void
  /** How long a stopping generation may take to finish its requests (default 5000 ms). */
  shutdownGraceMs?: number
  /** How long a generation may take to become ready (default 60000 ms). */
  startTimeoutMs?: number
  /** Where the bundled worker is cached (default <thaw>/.thaw/cache). */
  cacheDir?: string
}

const keyMap = z.record(z.string(), z.string().min(1))
const schema = z.strictObject({
  scriptRoot: z.string().min(1),
  port: z.number().int().min(0).max(65535).default(0),
  host: z.string().min(1).default('127.0.0.1'),
  settings: z.record(z.string(), z.string()).optional(),
  localSettings: z.boolean().default(true),
  keys: z
    .strictObject({
      master: z.string().min(1).optional(),
      host: keyMap.optional(),
      system: keyMap.optional(),
      functions: z.record(z.string(), keyMap).optional(),
    })
    .optional(),
  cors: z.array(z.string().min(1)).optional(),
  corsCredentials: z.boolean().default(false),
  functions: z.array(z.string().min(1)).optional(),
  watch: z.boolean().default(false),
  logger: z.custom<(event: RunnerEvent) => void>((v) => typeof v === 'function').optional(),
  shutdownGraceMs: z.number().int().nonnegative().default(5000),
  startTimeoutMs: z.number().int().positive().default(60_000),
  cacheDir: z.string().min(1).optional(),
})

export type ParsedRunnerOptions = z.infer<typeof schema> & { keys?: KeySet }

/** Validates createRunner() options; a bad option is the caller's fault (OPTIONS_INVALID). */
export function parseRunnerOptions(options: unknown): ParsedRunnerOptions {
  const result = schema.safeParse(options)
  if (!result.success) {
    throw new LocalRunnerError(
      'OPTIONS_INVALID',
      `invalid runner options: ${z.prettifyError(result.error)}`,
    )
  }
  return result.data
}
