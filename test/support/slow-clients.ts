import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'

/**
 * Clients that hold a connection as long as a server lets them, each in a loop until `stop()`:
 * the attacks of issue 15 item 7 and 8 (slowloris heads, trickled bodies, answers never read).
 * Raw sockets, so nothing in a client library times them out or reads for them. Each connection
 * the server ends is one `Attempt`; the client then connects again.
 */
export interface Attempt {
  /** What the server sent before it closed the connection (its status line, if any). */
  status: number | undefined
  /** Bytes of the request the client had sent when the connection closed. */
  sent: number
  /** Bytes the request has in all. */
  length: number
}

export interface SlowClient {
  readonly attempts: Attempt[]
  /** Ends the loop and closes the connection in progress (not counted as an attempt). */
  stop(): Promise<void>
}

interface Target {
  port: number
  /** Local address to connect from (per-address connection caps count it). */
  from: string
  /** Host header and path of the request. */
  host: string
  path: string
}

/** Sends a request head one byte every `everyMs` (slowloris). */
export function slowHead(t: Target, everyMs = 500): SlowClient {
  const head = `GET ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\nUser-Agent: ${'slow'.repeat(40)}\r\n\r\n`
  return loop(t, head, (socket, attempt, heard) => {
    socket.on('data', heard)
    return trickle(socket, head, attempt, everyMs)
  })
}

/** Sends a head at once, then a declared body of `bytes` one byte every `everyMs`. */
export function slowBody(t: Target, bytes = 100_000, everyMs = 1000): SlowClient {
  const head = `POST ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Type: text/plain\r\nContent-Length: ${bytes}\r\n\r\n`
  const request = head + 'x'.repeat(bytes)
  return loop(t, request, (socket, attempt, heard) => {
    socket.on('data', heard)
    socket.write(head)
    attempt.sent = head.length
    return trickle(socket, request, attempt, everyMs)
  })
}

/**
 * Sends a whole request and reads no more of the answer than its status line: the socket stays
 * paused, so what the kernel has taken in stays there and the server's side fills up. Without
 * reading it cannot see the server close the connection, so it looks at the kernel's state of
 * its socket every second (/proc/net/tcp: CLOSE_WAIT once the server's FIN came).
 */
export function nonReader(t: Target): SlowClient {
  const request = `GET ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`
  return loop(t, request, (socket, attempt, heard) => {
    socket.once('readable', () => {
      const first = socket.read(Math.min(64, socket.readableLength)) as Buffer | null
      if (first) heard(first)
    })
    socket.write(request)
    attempt.sent = request.length
    const timer = setInterval(async () => {
      if (await closedByPeer(socket)) socket.destroy()
    }, 1000)
    return () => clearInterval(timer)
  })
}

/** Whether the peer closed this TCP socket (IPv4): CLOSE_WAIT, or the kernel has no such socket. */
async function closedByPeer(socket: Socket): Promise<boolean> {
  if (socket.localAddress === undefined || socket.localPort === undefined) return false
  const ip = socket.localAddress.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))
  const local = `${ip.reverse().join('')}:${socket.localPort.toString(16).padStart(4, '0')}`
  const table = await readFile('/proc/net/tcp', 'utf8')
  const line = table.split('\n').find((l) => l.trim().split(/\s+/)[1]?.toLowerCase() === local)
  const CLOSE_WAIT = '08'
  return line === undefined || line.trim().split(/\s+/)[3] === CLOSE_WAIT
}

/** Writes the rest of `request` a byte at a time; returns a stop function. */
function trickle(socket: Socket, request: string, attempt: Attempt, everyMs: number) {
  const timer = setInterval(() => {
    if (attempt.sent >= request.length) return clearInterval(timer)
    socket.write(request[attempt.sent++]!)
  }, everyMs)
  return () => clearInterval(timer)
}

/** Connects again and again until stopped; `start` sends and reads, and returns how to stop. */
function loop(
  t: Target,
  request: string,
  start: (socket: Socket, attempt: Attempt, heard: (data: Buffer) => void) => () => void,
): SlowClient {
  const attempts: Attempt[] = []
  let stopping = false
  let current: Socket | undefined
  let done!: () => void
  const finished = new Promise<void>((r) => (done = r))
  const next = () => {
    if (stopping) return done()
    const attempt: Attempt = { status: undefined, sent: 0, length: request.length }
    const socket = connect({ port: t.port, host: '127.0.0.1', localAddress: t.from })
    current = socket
    let head = ''
    const heard = (data: Buffer) => {
      if (head.length < 64) head += data.toString('latin1')
    }
    let end = () => {}
    socket.once('connect', () => (end = start(socket, attempt, heard)))
    socket.on('error', () => {})
    socket.once('close', () => {
      end()
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
      attempt.status = m ? Number(m[1]) : undefined
      if (!stopping) attempts.push(attempt)
      setTimeout(next, 10)
    })
  }
  next()
  return {
    attempts,
    async stop() {
      stopping = true
      current?.destroy()
      await finished
    },
  }
}
