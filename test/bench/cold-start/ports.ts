import { createServer } from 'node:net'

/** A TCP port free on `host` right now (the kernel's pick for port 0). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const address = server.address()
  await new Promise((r) => server.close(r))
  if (!address || typeof address === 'string') throw new Error('no port')
  return address.port
}
