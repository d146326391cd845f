import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { connectControl } from '../../../runtime/worker/control-client.ts'

/** A host's end: every line each connection sends, by connection. */
async function listen(path: string) {
  const connections: { socket: Socket; lines: string[] }[] = []
  const server: Server = createServer((socket) => {
    const entry = { socket, lines: [] as string[] }
    connections.push(entry)
    let rest = ''
    socket.on('data', (c: Buffer) => {
      const parts = (rest + c.toString()).split('\n')
      rest = parts.pop()!
      entry.lines.push(...parts)
    })
  })
  server.listen(path)
  await once(server, 'listening')
  return { server, connections }
}

async function until(check: () => boolean) {
  while (!check()) await new Promise((r) => setTimeout(r, 10))
}

describe('control client', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('shuts down when the host closes the channel and no reconnect is asked for', async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-control-'))
    const host = await listen(join(dir, 'c.sock'))
    const control = await connectControl(join(dir, 'c.sock'), { lostGraceMs: 7 })
    const grace = new Promise<number>((r) => control.onShutdown(r))
    await until(() => host.connections.length === 1)
    host.connections[0]!.socket.destroy()
    expect(await grace).toBe(7)
    host.server.close()
  })

  it('connects to the next host on the same path and says hello, ready and what it said meanwhile', async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-control-'))
    const path = join(dir, 'c.sock')
    const first = await listen(path)
    const control = await connectControl(path, { reconnectMs: 20 })
    let shutdown = false
    control.onShutdown(() => (shutdown = true))
    control.send({ type: 'hello', protocol: 1, pid: 1, node: 'v20', worker: '0' })
    control.send({ type: 'ready', listen: '/w.sock', model: null, streaming: false, functions: [] })
    await until(() => first.connections[0]?.lines.length === 2)
    // The host dies: its socket closes and its listening file is gone.
    first.connections[0]!.socket.destroy()
    first.server.close()
    await rm(path, { force: true })
    await new Promise((r) => setTimeout(r, 100))
    control.send({ type: 'log', level: 'information', category: 'user', message: 'while away' })
    await new Promise((r) => setTimeout(r, 100))
    const next = await listen(path)
    await until(() => next.connections[0]?.lines.length === 3)
    expect(next.connections[0]!.lines.map((l) => JSON.parse(l).type)).toEqual([
      'hello',
      'ready',
      'log',
    ])
    expect(shutdown).toBe(false)
    await control.close()
    next.server.close()
  })
})
