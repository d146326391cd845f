import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import { CAPABILITIES, type Capability } from '../sandbox/capabilities.ts'
import { parseBodyLimits } from '../request-body/index.ts'

/** What a node of an app may use, and how the host scales and times it. */
export interface AppLimits {
  /** Memory of each node (cgroup limit), bytes. */
  memoryBytes: number
  /** Tasks (processes and threads) per node. */
  pids: number
  /** CPU time of each node in thousandths of a CPU (cgroup CFS quota per 100 ms period). */
  cpuMillis: number
  /** Capabilities the app's nodes get beyond thaw's minimal set (none), if the operator allows. */
  addCapabilities: Capability[]
  /** `default`: thaw's seccomp filter; `unconfined`: none, if the operator allows. */
  seccomp: 'default' | 'unconfined'
  /** Nodes the app may run at once. */
  maxNodes: number
  /** Requests one node serves at once. */
  concurrency: number
  /** Requests that may wait for a node; one more is answered 429. */
  maxQueue: number
  /** A cold start (mount, sandbox, app load) longer than this fails with 503. */
  startTimeoutMs: number
  /** A request that has no answer head after this gets 504. */
  requestTimeoutMs: number
  /** A node with nothing in flight this long is recycled (scale to zero). */
  idleTimeoutMs: number
}

export interface App {
  /** DNS label: the app is reached at `<name>.<domain>` and `/<name>/`. */
  name: string
  /** Image reference with its registry host, tag or digest: `127.0.0.1:5000/apps/hello:v1`. */
  image: string
  /** App settings: environment of every node (they win over the image's Env). */
  settings: Record<string, string>
  /** Host keys (name → value) that open `function`-level routes; the master key opens all. */
  keys: Record<string, string>
  limits: AppLimits
  createdAt: string
  updatedAt: string
}

export const DEFAULT_LIMITS: AppLimits = {
  memoryBytes: 256 * 1024 * 1024,
  pids: 128,
  cpuMillis: 1000,
  addCapabilities: [],
  seccomp: 'default',
  maxNodes: 4,
  concurrency: 16,
  maxQueue: 100,
  startTimeoutMs: 60_000,
  requestTimeoutMs: 230_000, // Azure's HTTP trigger limit (230 s, the load balancer's idle timeout)
  idleTimeoutMs: 300_000,
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/
const RESERVED = new Set(['admin', 'api', 'metrics', 'healthz'])

const name = z
  .string()
  .regex(NAME, 'must be 1-40 lowercase letters, digits or "-", not starting or ending with "-"')
  .refine((n) => !RESERVED.has(n), 'is reserved by the host (admin, api, metrics, healthz)')
const image = z.string().refine((r) => {
  try {
    return parseImageReference(r).registry !== undefined
  } catch {
    return false
  }
}, 'must be an image reference with a registry host, e.g. 127.0.0.1:5000/apps/hello:v1')
const settingName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'is not a valid variable name')
const settings = z.record(settingName, z.string().max(32_768)).refine(
  (s) => !Object.keys(s).some((k) => k.startsWith('THAW_')),
  'THAW_* names belong to the host',
)
/** Settings the host itself reads are checked when they are set (request-body/body-limits.ts). */
const inputSettings = settings.superRefine((s, ctx) => {
  for (const message of parseBodyLimits(s).problems) ctx.addIssue({ code: 'custom', message })
})
const keys = z.record(z.string().regex(/^[\w.-]{1,64}$/, 'is not a valid key name'), z.string().min(16, 'keys must be at least 16 characters'))
const ms = (max: number) => z.number().int().min(1).max(max)
const limits = z
  .object({
    memoryBytes: z.number().int().min(32 * 1024 * 1024, 'must be at least 32 MiB').max(64 * 1024 ** 3),
    pids: z.number().int().min(16).max(65_536),
    cpuMillis: z.number().int().min(10, 'must be at least 10 (1/100 CPU)').max(1_024_000),
    addCapabilities: z.array(z.enum(CAPABILITIES)).max(CAPABILITIES.length),
    seccomp: z.enum(['default', 'unconfined']),
    maxNodes: z.number().int().min(1).max(1024),
    concurrency: z.number().int().min(1).max(10_000),
    maxQueue: z.number().int().min(0).max(100_000),
    startTimeoutMs: ms(600_000),
    requestTimeoutMs: ms(3_600_000),
    idleTimeoutMs: ms(86_400_000),
  })
  .strict()

/** Body of `PUT /admin/apps/<name>` (create or replace) and `POST /admin/apps`. */
const appInput = z
  .object({
    name,
    image,
    settings: inputSettings.optional(),
    keys: keys.optional(),
    limits: limits.partial().optional(),
  })
  .strict()

/** Body of `PATCH /admin/apps/<name>`: any field but the name. */
const appPatch = appInput.omit({ name: true }).partial().strict()

export type AppInput = z.infer<typeof appInput>
export type AppPatch = z.infer<typeof appPatch>

/** Thrown for an admin body that does not validate; the message lists every problem. */
function invalid(what: string, error: z.ZodError): ThawError {
  const problems = error.issues.map((i) => `${i.path.join('.') || '(body)'} ${i.message}`)
  return new ThawError('APP_INVALID', `invalid ${what}: ${problems.join('; ')}`, { fault: 'user' })
}

export function parseAppInput(value: unknown): AppInput {
  const r = appInput.safeParse(value)
  if (!r.success) throw invalid('app', r.error)
  return r.data
}

export function parseAppPatch(value: unknown): AppPatch {
  const r = appPatch.safeParse(value)
  if (!r.success) throw invalid('app update', r.error)
  return r.data
}

/** The stored app (apps.json): trusted once written, parsed again because files can be edited. */
const storedApp = z.object({
  name,
  image,
  settings,
  keys,
  // Files written before these limits existed get their defaults.
  limits: limits.partial({ cpuMillis: true, addCapabilities: true, seccomp: true }),
  createdAt: z.string(),
  updatedAt: z.string(),
})

export function parseStoredApps(value: unknown): App[] {
  const r = z.object({ version: z.literal(1), apps: z.array(storedApp) }).safeParse(value)
  if (!r.success) throw invalid('apps file', r.error)
  return r.data.apps.map((a) => ({ ...a, limits: { ...DEFAULT_LIMITS, ...a.limits } }))
}

export function isAppName(value: string): boolean {
  return name.safeParse(value).success
}
