import { z } from 'zod'
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
 *     ]
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

export const authConfigSchema = z.strictObject({
  /** Token endpoint URL advertised in challenges; default `<request origin>/token`. */
  realm: z.url().optional(),
  /** The `service` of challenges and tokens; default the request's Host. */
  service: z.string().min(1).optional(),
  /** HMAC key for tokens (≥ 32 characters); default a random key per process. */
  tokenKey: z.string().min(32, 'tokenKey needs at least 32 characters').optional(),
  tokenTtlSeconds: z.number().int().min(60).max(86_400).default(300),
  users: z
    .record(userName, z.strictObject({ password: z.string().refine(isPasswordHash, 'must be a hash from `thaw edge hash-password`') }))
    .default({}),
  access: z.array(accessRuleSchema).default([]),
})

export type AuthConfig = z.infer<typeof authConfigSchema>
export type AuthConfigInput = z.input<typeof authConfigSchema>
export type AccessRule = z.infer<typeof accessRuleSchema>
