import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'
import { ADDABLE_CAPABILITIES, CAPABILITIES, type Capability } from '../sandbox/capabilities.ts'
import type { AppLimits } from './app-spec.ts'

/**
 * What the host's operator lets one app ask for (the host's config: `thaw host --limits FILE`,
 * or startHost's `operatorLimits`): ceilings on each node's memory, tasks and CPU, the
 * capabilities an app may add to its nodes, and whether it may turn the seccomp filter off. An
 * app over them is refused when created or changed (400 APP_OVER_LIMIT, naming each limit), and
 * not started if the operator lowered them since (its requests get 503 with the same message).
 */
export interface OperatorLimits {
  maxMemoryBytes: number
  maxPids: number
  /** In thousandths of a CPU, like AppLimits.cpuMillis. */
  maxCpuMillis: number
  /** Capabilities an app may put in `addCapabilities`. */
  addableCapabilities: Capability[]
  /** Whether an app may set `seccomp: 'unconfined'`. */
  allowUnconfined: boolean
}

/** 4 GiB, 4096 tasks, every CPU of the machine, Docker's capabilities but NET_RAW and MKNOD. */
export function defaultOperatorLimits(): OperatorLimits {
  return {
    maxMemoryBytes: 4 * 1024 ** 3,
    maxPids: 4096,
    maxCpuMillis: availableParallelism() * 1000,
    addableCapabilities: [...ADDABLE_CAPABILITIES],
    allowUnconfined: false,
  }
}

const schema = z
  .object({
    maxMemoryBytes: z
      .number()
      .int()
      .min(32 * 1024 * 1024),
    maxPids: z.number().int().min(16),
    maxCpuMillis: z.number().int().min(10),
    addableCapabilities: z.array(z.enum(CAPABILITIES)),
    allowUnconfined: z.boolean(),
  })
  .strict()
  .partial()

/** The host config's limits: any field left out keeps its default. */
export function parseOperatorLimits(value: unknown): OperatorLimits {
  const r = schema.safeParse(value)
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(file)'} ${i.message}`)
    throw new ThawError('OPERATOR_LIMITS_INVALID', `invalid limits: ${problems.join('; ')}`, {
      fault: 'user',
    })
  }
  return { ...defaultOperatorLimits(), ...r.data }
}

/** Each way `limits` goes past the operator's, as `limits.<field> …` sentences. */
export function overOperatorLimits(limits: AppLimits, operator: OperatorLimits): string[] {
  const problems: string[] = []
  const ceiling = (field: keyof AppLimits, value: number, max: number) => {
    if (value > max) problems.push(`limits.${field} ${value} is over the host's maximum of ${max}`)
  }
  ceiling('memoryBytes', limits.memoryBytes, operator.maxMemoryBytes)
  ceiling('pids', limits.pids, operator.maxPids)
  ceiling('cpuMillis', limits.cpuMillis, operator.maxCpuMillis)
  const refused = limits.addCapabilities.filter((c) => !operator.addableCapabilities.includes(c))
  if (refused.length > 0) {
    const allowed = operator.addableCapabilities.join(', ') || 'none'
    problems.push(
      `limits.addCapabilities ${refused.join(', ')} not allowed by the host (allowed: ${allowed})`,
    )
  }
  if (limits.seccomp === 'unconfined' && !operator.allowUnconfined) {
    problems.push(`limits.seccomp "unconfined" is not allowed by the host`)
  }
  return problems
}

/** Throws APP_OVER_LIMIT (the user's fault) naming every limit `app` goes past. */
export function checkOperatorLimits(app: string, limits: AppLimits, operator: OperatorLimits) {
  const problems = overOperatorLimits(limits, operator)
  if (problems.length === 0) return
  throw new ThawError('APP_OVER_LIMIT', `app "${app}": ${problems.join('; ')}`, { fault: 'user' })
}
