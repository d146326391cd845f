/**
 * A lean TCP proxy that adds latency: every chunk coming back from the target is written to the
 * client `delayMs` later (FIFO per connection, so order is kept), so each request/response round
 * trip takes about `delayMs` more. Requests go through undelayed. This kernel has no netem; the
 * proxy's own CPU time is read from /proc by the benchmark and reported.
 *
 *   node --import tsx delay-proxy.ts <listenHost> <targetHost:port> <delayMs>
 *
 * Prints `listening <port>` once it accepts connections. Listens on a port the kernel picks.
 */
import { createConnection, createServer, type Socket } from 'node:net'

const [listenHost, target, delayArg] = process.argv.slice(2)
const [targetHost, targetPort] = (target ?? '').split(':')
const delayMs = Number(delayArg)
if (!listenHost || !targetHost || !targetPort || !(delayMs >= 0)) {
  console.error('usage: delay-proxy.ts <listenHost> <targetHost:port> <delayMs>')
  process.exit(2)
}

/** Past this much data queued for a slow client, stop reading from the target until it drains. */
const HIGH_WATER = 8 << 20

function relay(client: Socket): void {
  const upstream = createConnection({ host: targetHost, port: Number(targetPort) })
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  client.pipe(upstream)
  let queued = 0
  const later = (f: () => void) => (delayMs === 0 ? f() : setTimeout(f, delayMs))
  upstream.on('data', (chunk: Buffer) => {
    queued += chunk.length
    if (queued > HIGH_WATER) upstream.pause()
    later(() => {
      queued -= chunk.length
      if (!client.destroyed) client.write(chunk)
      if (queued <= HIGH_WATER && upstream.isPaused()) upstream.resume()
    })
  })
  upstream.on('end', () => later(() => client.end()))
  const destroy = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', destroy)
  upstream.on('error', destroy)
  client.on('close', () => upstream.destroy())
}

const server = createServer(relay)
server.listen(0, listenHost, () => {
  const address = server.address()
  if (address && typeof address !== 'string') console.log(`listening ${address.port}`)
})
process.on('SIGTERM', () => process.exit(0))
