import type { z } from 'zod'
import { ThawError } from '../../runtime/errors.ts'

/**
 * Validates input at a boundary (config file, CLI flags, options) and turns zod's issues into
 * one user-fault error that names each bad field: `invalid config: port: Too big: …; auth.users…`.
 */
export function parseWithZod<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issues = result.error.issues.slice(0, 8).map((issue) => {
    const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)'
    return `${where}: ${issue.message}`
  })
  throw new ThawError('CONFIG_INVALID', `invalid ${what}: ${issues.join('; ')}`, { fault: 'user' })
}
