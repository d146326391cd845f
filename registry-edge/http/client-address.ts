import type { Context } from 'hono'
import { addressKey } from '../../runtime/net/address-key.ts'
import type { EdgeEnv } from '../edge-env.ts'

/**
 * The client a request came from, as per-client limits (upload sessions, failed logins) count
 * it: the peer address of the connection, an IPv6 client by its /64 (runtime/net/address-key.ts).
 * Headers such as X-Forwarded-For are not believed: any client can send them.
 */
export function clientAddress(c: Context<EdgeEnv>): string {
  const address = c.env?.incoming?.socket.remoteAddress
  return address ? addressKey(address) : 'unknown'
}
