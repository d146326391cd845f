import type { Context } from 'hono'
import { OciError } from '../../runtime/oci/index.ts'
import type { EdgeEnv } from '../edge-env.ts'
import { jsonResponse } from '../http/http-errors.ts'
import type { EdgeGc } from './edge-gc.ts'

/**
 * `POST /_thaw/gc[?dry-run=1]` (what `thaw edge gc` calls): one collection now, its report as
 * JSON. Only from the edge's own machine (a loopback peer): it is an operator's command, and the
 * registry's users, whatever their scopes, must not be able to start collections at will.
 */
export async function gcRoute(c: Context<EdgeEnv>, gc: EdgeGc): Promise<Response> {
  const peer = c.env?.incoming?.socket.remoteAddress ?? ''
  if (!isLoopback(peer)) {
    throw new OciError('DENIED', 'garbage collection is started from the edge machine only', {
      status: 403,
    })
  }
  const dryRun = ['1', 'true', ''].includes(c.req.query('dry-run') ?? 'no')
  return jsonResponse(await gc.run({ dryRun }))
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}
