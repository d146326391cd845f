import { z } from 'zod'
import { DEFAULT_LOGIN_LIMITS, type LoginLimits } from './login-limits.ts'
import { isPasswordHash } from './password-hash.ts'

/**
 * The `auth` section of the edge config. Absent = auth off (anyone may pull and push).
 *
 *   {
 *     "users": { "alice": { "password": "scrypt$…$…" } },
 *     "access": [
 *       { "repository": "apps/**", "users": ["alice"], "actions": ["pull", "push", "delete"] },
 *       { "repository": "apps/**", "users": ["*"], "actions": ["pull"] },
 *       { "repository": "public/*", "anonymous": true, "actions": ["pull"] }
 *     ],
 *     "loginLimits": { "freeFailures": 5, "backoffSeconds": 1, "maxBackoffSeconds": 900,
 *                      "forgetAfterSeconds": 3600, "maxConcurrentChecks": 2, "maxQueuedChecks": 32 }
 *   }
 *
 * A rule grants its actions on repositories matching its pattern (`*` = within one path
 * component, `**` = across components) to the users listed (`*` = any signed-in user) and, with
 * `anonymous: true`, to everyone. Grants add up; nothing is granted otherwise.
 */
const userName = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'user names are 1-64 of A-Za-z0-9._@-')

const accessRuleSchema = z.strictObject({
  repository: z
    .string()
    .regex(/^[a-z0-9*][a-z0-9._/*-]*$/, 'a repository name or pattern (lowercase, * and **)'),
  actions: z.array(z.enum(['pull', 'push', 'delete', '*'])).min(1),
  users: z.array(z.union([userName, z.literal('*')])).optional(),
  anonymous: z.boolean().optional(),
})

const d = DEFAULT_LOGIN_LIMITS

/** `loginLimits`: how password guessing is slowed down (login-limits.ts); all optional. */
const loginLimitsSchema = z.strictObject({
  freeFailures: z.number().int().min(0).default(d.freeFailures),
  backoffSeconds: z
    .number()
    .positive()
    .default(d.backoffMs / 1000),
  maxBackoffSeconds: z
    .number()
    .positive()
    .default(d.maxBackoffMs / 1000),
  forgetAfterSeconds: z
    .number()
    .positive()
    .default(d.forgetAfterMs / 1000),
  maxConcurrentChecks: z.number().int().min(1).max(64).default(d.maxConcurrentChecks),
  maxQueuedChecks: z.number().int().min(0).default(d.maxQueuedChecks),
})

export const authConfigSchema = z
  .strictObject({
    /** Token endpoint URL advertised in challenges; default `<request origin>/token`. */
    realm: z.url().optional(),
    /**
     * The `service` of challenges, and the audience tokens are issued for and checked against;
     * default the request's Host.
     */
    service: z.string().min(1).optional(),
    /** HMAC key for tokens (≥ 32 characters); default a random key per process. */
    tokenKey: z.string().min(32, 'tokenKey needs at least 32 characters').optional(),
    tokenTtlSeconds: z.number().int().min(60).max(86_400).default(300),
    users: z
      .record(
        userName,
        z.strictObject({
          password: z
            .string()
            .refine(isPasswordHash, 'must be a hash from `thaw edge hash-password`'),
        }),
      )
      .default({}),
    access: z.array(accessRuleSchema).default([]),
    loginLimits: loginLimitsSchema.default(loginLimitsSchema.parse({})),
  })
  // A key shared by several edges makes their tokens interchangeable unless each checks for its
  // own audience, which a Host header (the default service) cannot be trusted to name.
  .refine((c) => c.tokenKey === undefined || c.service !== undefined, {
    message: 'a tokenKey needs a service: tokens are checked against it as their audience',
    path: ['service'],
  })

export type AuthConfig = z.infer<typeof authConfigSchema>

export function loginLimitsOf(config: AuthConfig): LoginLimits {
  const l = config.loginLimits
  return {
    freeFailures: l.freeFailures,
    backoffMs: l.backoffSeconds * 1000,
    maxBackoffMs: l.maxBackoffSeconds * 1000,
    forgetAfterMs: l.forgetAfterSeconds * 1000,
    maxConcurrentChecks: l.maxConcurrentChecks,
    maxQueuedChecks: l.maxQueuedChecks,
  }
}
export type AuthConfigInput = z.input<typeof authConfigSchema>
export type AccessRule = z.infer<typeof accessRuleSchema>
