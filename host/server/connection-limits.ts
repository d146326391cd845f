import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { addressKey } from '../../runtime/net/address-key.ts'

/** Why a connection was closed as soon as it was accepted. */
export type ConnectionRefusal = 'total' | 'per_address'

/**
 * Caps the server's open connections in all and per client address (runtime/net/address-key.ts:
 * the peer address, an IPv6 client by its /64; never a header). A connection over either cap is
 * closed as soon as it is accepted, before a byte is read, as node:http does at `maxConnections`
 * and nginx's limit_conn does per address: the client sees the connection reset and may retry.
 * So one address cannot take every connection the host can hold, however slowly it sends.
 */
export function limitConnections(
  server: Server,
  limits: { maxConnections: number; maxConnectionsPerAddress: number },
  onRefused: (refusal: ConnectionRefusal) => void,
): void {
  server.maxConnections = limits.maxConnections
  server.on('drop', () => onRefused('total'))
  const open = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? 'unknown')
    const count = open.get(key) ?? 0
    if (count >= limits.maxConnectionsPerAddress) {
      onRefused('per_address')
      socket.destroy()
      return
    }
    open.set(key, count + 1)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left > 0) open.set(key, left)
      else open.delete(key)
    })
  })
}
