import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import type { Server } from 'node:http'

/**
 * Listens on THAW_LISTEN: a unix socket path (anything with a "/") or host:port. Returns the
 * address to report in `ready` (the real port when 0 was asked).
 */
export async function listenOn(server: Server, address: string): Promise<string> {
  if (address.includes('/')) {
    await rm(address, { force: true })
    server.listen(address)
    await once(server, 'listening')
    return address
  }
  const colon = address.lastIndexOf(':')
  const host = colon === -1 ? '127.0.0.1' : address.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(colon === -1 ? address : address.slice(colon + 1))
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`THAW_LISTEN must be a socket path or host:port, not "${address}"`)
  }
  server.listen(port, host)
  await once(server, 'listening')
  const bound = server.address()
  const real = typeof bound === 'object' && bound ? bound.port : port
  return `${host.includes(':') ? `[${host}]` : host}:${real}`
}
