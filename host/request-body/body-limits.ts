import { DEFAULT_BODY_LIMIT, WorkerEnv } from '../../runtime/protocol/worker-contract.ts'

/** How much of a request body an app takes, and how slowly it may come. */
export interface RequestBodyLimits {
  /** The largest body, in bytes; a longer one is answered 413. */
  maxBytes: number
  /** No byte for this long while the body is being read, or the rate below missed after it: 408. */
  timeoutMs: number
  /** The least average rate, bytes per second, once `timeoutMs` has passed; 0 turns it off. */
  minBytesPerSecond: number
}

/**
 * The app settings that set the limits. The size is Azure's own setting (HOST
 * EnvironmentSettingNames.FunctionsRequestBodySizeLimit); Azure has no body deadline, so the other
 * two are thaw's, modelled on Apache's mod_reqtimeout (`RequestReadTimeout body=20,MinRate=500`)
 * and Kestrel's MinRequestBodyDataRate: a client gets `timeout` seconds, extended by one second
 * for every `rate` bytes it sends, and never `timeout` seconds of silence (nginx's
 * client_body_timeout).
 */
export const BodySettings = {
  size: WorkerEnv.bodyLimit,
  timeout: 'FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS',
  rate: 'FUNCTIONS_REQUEST_BODY_MIN_RATE',
} as const

/** mod_reqtimeout's defaults: 20 s, then at least 500 bytes/s on average. */
export const DEFAULT_BODY_TIMEOUT_MS = 20_000
export const DEFAULT_BODY_MIN_RATE = 500

/**
 * The default size limit for a node of `memoryBytes`: an eighth of it (32 MiB for the default
 * 256 MiB node, Cloud Run's HTTP/1 limit), so that one request to a function that reads its body
 * whole (`await request.text()` holds it several times: the chunks, the joined buffer, the string)
 * still fits beside the runtime: measured with the sample template's handler, which also echoes
 * it, one 32 MiB body answers on a 256 MiB node (two at once do not; host/README.md). Never above
 * Azure's 100 MB; Azure's 100 MB where no node limit applies (`thaw start`).
 */
export function defaultBodyLimit(memoryBytes?: number): number {
  if (memoryBytes === undefined) return DEFAULT_BODY_LIMIT
  return Math.min(DEFAULT_BODY_LIMIT, Math.floor(memoryBytes / 8))
}

export interface ParsedBodyLimits {
  limits: RequestBodyLimits
  /** One line per setting that was malformed (its default was used instead). */
  problems: string[]
}

/**
 * The limits of an app from its settings; a setting that is absent or malformed takes its
 * default, and a malformed one is named in `problems` (the admin API refuses it, `thaw start`
 * warns).
 */
export function parseBodyLimits(
  settings: Record<string, string | undefined>,
  node: { memoryBytes?: number } = {},
): ParsedBodyLimits {
  const problems: string[] = []
  const read = (name: string, fallback: number, parse: (v: string) => number | undefined) => {
    const raw = settings[name]
    if (raw === undefined || raw.trim() === '') return fallback
    const value = parse(raw.trim())
    if (value !== undefined) return value
    problems.push(`${name} ${DESCRIPTIONS[name]}, not "${raw}"`)
    return fallback
  }
  const maxBytes = read(BodySettings.size, defaultBodyLimit(node.memoryBytes), wholeNumber)
  const seconds = read(BodySettings.timeout, DEFAULT_BODY_TIMEOUT_MS / 1000, (v) => {
    const n = decimal(v)
    return n !== undefined && n > 0 && n <= MAX_TIMEOUT_SECONDS ? n : undefined
  })
  const minBytesPerSecond = read(BodySettings.rate, DEFAULT_BODY_MIN_RATE, wholeNumber)
  return {
    limits: { maxBytes, timeoutMs: Math.round(seconds * 1000), minBytesPerSecond },
    problems,
  }
}

/** An hour: longer than any request may run (requestTimeoutMs defaults to 230 s). */
const MAX_TIMEOUT_SECONDS = 3600

const DESCRIPTIONS: Record<string, string> = {
  [BodySettings.size]: 'must be a whole number of bytes',
  [BodySettings.timeout]: `must be a number of seconds above 0, at most ${MAX_TIMEOUT_SECONDS}`,
  [BodySettings.rate]: 'must be a whole number of bytes per second (0 turns the rate off)',
}

function wholeNumber(v: string): number | undefined {
  if (!/^\d+$/.test(v)) return undefined
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : undefined
}

function decimal(v: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(v) ? Number(v) : undefined
}
