import type { Context } from 'hono'
import type { EdgeEnv } from '../edge-env.ts'

/**
 * The client a request came from, as per-client limits (upload sessions, failed logins) count
 * it: the peer address of the connection. Headers such as X-Forwarded-For are not believed: any
 * client can send them. An IPv6 client is its /64, since one host usually holds a whole /64 and
 * could otherwise take a fresh address for every request.
 */
export function clientAddress(c: Context<EdgeEnv>): string {
  const address = c.env?.incoming?.socket.remoteAddress
  return address ? addressKey(address) : 'unknown'
}

export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!address.includes(':')) return address
  return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`
}

/** The eight groups of an IPv6 address, `::` expanded and leading zeros dropped. */
function ipv6Groups(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::')
  const first = head ? head.split(':') : []
  const last = tail ? tail.split(':') : []
  const groups =
    tail === undefined
      ? first
      : [...first, ...Array<string>(Math.max(0, 8 - first.length - last.length)).fill('0'), ...last]
  return groups.map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16).toString(16) : g))
}
