import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Subject } from './auth/access-policy.ts'
import type { Action } from './auth/scope.ts'
import type { V2Route } from './routes/v2-paths.ts'

/**
 * Who is asking and what they may do. With auth off, everyone may do everything; with auth on,
 * the auth middleware sets one per request from Basic credentials, a bearer token or nothing.
 */
export interface Principal {
  subject: Subject
  can(repository: string, action: Action): boolean
}

export const EVERYONE: Principal = { subject: { kind: 'anonymous' }, can: () => true }

/** The hono environment of the edge app. */
export type EdgeEnv = {
  /** Set by @hono/node-server; absent under `app.request()` in tests. */
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse }
  Variables: { route: V2Route; principal: Principal }
}
