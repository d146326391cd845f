import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import { CAPABILITIES, type Capability } from '../sandbox/capabilities.ts'
import { parseBodyLimits } from '../request-body/index.ts'
import type { AppRecord, RevisionChange } from './revision.ts'

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
  /** When the active revision was made. */
  updatedAt: string
  /** The active revision's number (apps/revision.ts). */
  revision: number
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
const settings = z
  .record(settingName, z.string().max(32_768))
  .refine(
    (s) => !Object.keys(s).some((k) => k.startsWith('THAW_')),
    'THAW_* names belong to the host',
  )
/** Settings the host itself reads are checked when they are set (request-body/body-limits.ts). */
const inputSettings = settings.superRefine((s, ctx) => {
  for (const message of parseBodyLimits(s).problems) ctx.addIssue({ code: 'custom', message })
})
const keyName = z.string().regex(/^[\w.-]{1,64}$/, 'is not a valid key name')
const keys = z.record(keyName, z.string().min(16, 'keys must be at least 16 characters'))
const ms = (max: number) => z.number().int().min(1).max(max)
const limits = z
  .object({
    memoryBytes: z
      .number()
      .int()
      .min(32 * 1024 * 1024, 'must be at least 32 MiB')
      .max(64 * 1024 ** 3),
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

/** Body of `PUT /admin/apps/<name>` and `POST /admin/apps`: fields left out carry over. */
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

const names = z.array(z.string()).max(1000)

/**
 * Body of `POST /admin/apps/<name>/revisions` (what `thaw deploy` sends): settings and keys
 * merge into the active revision's, `unset` removes settings, limits merge; an image is needed
 * only for a new app.
 */
const deployInput = z
  .object({
    image: image.optional(),
    settings: settings.optional(),
    unset: names.optional(),
    keys: keys.optional(),
    limits: limits.partial().optional(),
  })
  .strict()

/** Body of `PATCH /admin/apps/<name>/settings`. */
const settingsPatch = z.object({ set: settings.optional(), unset: names.optional() }).strict()

/** Body of `POST /admin/apps/<name>/rollback`: default the revision before the active one. */
const rollbackInput = z.object({ revision: z.number().int().min(1).optional() }).strict()

/** Body of `PUT /admin/apps/<name>/keys/<key>`: without a value, the host makes one (renew). */
const keyInput = z
  .object({ value: z.string().min(16, 'keys must be at least 16 characters').max(1024).optional() })
  .strict()

export type AppInput = z.infer<typeof appInput>
export type AppPatch = z.infer<typeof appPatch>
export type DeployInput = z.infer<typeof deployInput>
export type SettingsPatch = z.infer<typeof settingsPatch>
export type RollbackInput = z.infer<typeof rollbackInput>
export type KeyInput = z.infer<typeof keyInput>

/** Thrown for an admin body that does not validate; the message lists every problem. */
function invalid(what: string, error: z.ZodError): ThawError {
  const problems = error.issues.map((i) => `${i.path.join('.') || '(body)'} ${i.message}`)
  return new ThawError('APP_INVALID', `invalid ${what}: ${problems.join('; ')}`, { fault: 'user' })
}

function parser<T>(schema: z.ZodType<T>, what: string): (value: unknown) => T {
  return (value) => {
    const r = schema.safeParse(value)
    if (!r.success) throw invalid(what, r.error)
    return r.data
  }
}

export const parseAppInput = parser(appInput, 'app')
export const parseAppPatch = parser(appPatch, 'app update')
export const parseDeployInput = parser(deployInput, 'deploy')
export const parseSettingsPatch = parser(settingsPatch, 'settings change')
export const parseRollbackInput = parser(rollbackInput, 'rollback')
export const parseKeyInput = parser(keyInput, 'key')

/** Problems of a revision's settings as a whole (after a merge): the host's own settings. */
export function settingsProblems(s: Record<string, string>): string[] {
  const r = inputSettings.safeParse(s)
  return r.success
    ? []
    : r.error.issues.map(
        (i) => `settings${i.path.length ? '.' + i.path.join('.') : ''} ${i.message}`,
      )
}

export function isKeyName(value: string): boolean {
  return keyName.safeParse(value).success
}

const storedLimits = limits.partial({ cpuMillis: true, addCapabilities: true, seccomp: true })
const storedRevision = z.object({
  number: z.number().int().min(1),
  image,
  settings,
  keys,
  limits: storedLimits,
  createdAt: z.string(),
  cause: z.union([
    z.object({ kind: z.enum(['create', 'deploy', 'settings', 'keys', 'limits', 'replace']) }),
    z.object({ kind: z.literal('rollback'), to: z.number().int() }),
  ]),
  functions: z
    .array(
      z.object({
        name: z.string(),
        path: z.string(),
        methods: z.array(z.string()).nullable(),
        authLevel: z.string(),
      }),
    )
    .optional(),
  failed: z.object({ error: z.string(), logs: z.array(z.string()) }).optional(),
})

/** An app in apps.json (version 2): its revisions, newest first, and which one is active. */
const storedRecord = z.object({
  name,
  createdAt: z.string(),
  active: z.number().int().min(1),
  revisions: z.array(storedRevision).min(1),
})

/** Version 1 had one record per app, no history: it becomes the app's revision 1. */
const storedAppV1 = z.object({
  name,
  image,
  settings,
  keys,
  // Files written before these limits existed get their defaults.
  limits: storedLimits,
  createdAt: z.string(),
  updatedAt: z.string(),
})

/** apps.json, either version, as version 2 records (limits completed with their defaults). */
export function parseStoredApps(value: unknown): AppRecord[] {
  const r = z
    .union([
      z.object({ version: z.literal(2), apps: z.array(storedRecord) }),
      z.object({ version: z.literal(1), apps: z.array(storedAppV1) }),
    ])
    .safeParse(value)
  if (!r.success) throw invalid('apps file', r.error)
  const records =
    r.data.version === 2
      ? r.data.apps
      : r.data.apps.map(({ updatedAt, createdAt, name, ...content }) => ({
          name,
          createdAt,
          active: 1,
          revisions: [
            { number: 1, createdAt: updatedAt, cause: { kind: 'create' as const }, ...content },
          ],
        }))
  return records.map((record) => ({
    ...record,
    revisions: record.revisions.map((rev) => ({
      ...rev,
      limits: { ...DEFAULT_LIMITS, ...rev.limits },
    })),
  }))
}

export function isAppName(value: string): boolean {
  return name.safeParse(value).success
}

/**
 * The change a whole app body makes (`POST /admin/apps`, `PUT /admin/apps/<name>`): the image,
 * and the settings, keys and limits given replace the current ones; those not given carry over.
 */
export function inputChange(input: AppInput, existed: boolean): RevisionChange {
  return {
    cause: { kind: existed ? 'replace' : 'create' },
    image: input.image,
    replaceSettings: input.settings,
    replaceKeys: input.keys,
    replaceLimits: input.limits,
  }
}

/** The change `PATCH /admin/apps/<name>` makes: settings and keys given replace, limits merge. */
export function patchChange(patch: AppPatch): RevisionChange {
  const kind = patch.image ? 'deploy' : patch.settings ? 'settings' : patch.keys ? 'keys' : 'limits'
  return {
    cause: { kind },
    image: patch.image,
    replaceSettings: patch.settings,
    replaceKeys: patch.keys,
    limits: patch.limits,
  }
}
