/**
 * The client a connection comes from, as per-client limits count it (the host's connections per
 * address; the edge's upload sessions and failed logins): its peer address. An IPv4 address
 * mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 address; an IPv6 client is its /64, since one
 * host usually holds a whole /64 and could otherwise take a fresh address for every connection.
 * Headers such as X-Forwarded-For are never the source: any client can send them.
 */
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
