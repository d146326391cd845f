import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createLineSplitter, encodeLine } from '../protocol/ndjson.ts'
import type { WorkerMessage } from '../protocol/worker-messages.ts'

/** The worker's end of the control channel (worker-contract.ts): NDJSON over a unix socket. */
export interface ControlClient {
  send(message: WorkerMessage): void
  /**
   * Called once, on a `shutdown` message (with its grace) or when the host closes the channel
   * (with `lostGraceMs`: a host that went away will not wait for us).
   */
  onShutdown(callback: (graceMs: number) => void): void
  /** Flushes what was sent and closes the connection. Idempotent. */
  close(): Promise<void>
}

/** Writes (one event-loop turn's messages each) kept for a host that is away; oldest dropped first. */
const BACKLOG_WRITES = 1000

export interface ControlOptions {
  /** Grace of the shutdown when the host closes the channel (and no reconnect is asked for). */
  lostGraceMs?: number
  /**
   * When set, a channel the host closes is connected again every this many ms instead of
   * shutting down (thaw's host keeps nodes through its own restart: worker-contract.ts
   * WorkerEnv.controlReconnect). The new host hears hello and ready again, then what was said
   * meanwhile (at most BACKLOG_WRITES writes).
   */
  reconnectMs?: number
}

export async function connectControl(
  path: string,
  options: ControlOptions = {},
): Promise<ControlClient> {
  const lostGraceMs = options.lostGraceMs ?? 1000
  let socket: Socket = await connectOnce(path)
  let shutdownCallback: ((graceMs: number) => void) | undefined
  let shutdownGrace: number | undefined
  let closing: Promise<void> | undefined
  /** hello and ready, said again to a host that connects anew. */
  const greeting = new Map<string, string>()
  let backlog: string[] | undefined
  const requestShutdown = (graceMs: number) => {
    if (shutdownGrace !== undefined) return
    shutdownGrace = graceMs
    shutdownCallback?.(graceMs)
  }
  // The host's messages are validated by hand: the worker does not bundle zod.
  const onLine = (line: string) => {
    let message: unknown
    try {
      message = JSON.parse(line)
    } catch {
      return
    }
    const m = message as { type?: unknown; graceMs?: unknown }
    if (m.type === 'shutdown') {
      requestShutdown(typeof m.graceMs === 'number' && m.graceMs >= 0 ? m.graceMs : lostGraceMs)
    }
  }
  const attach = (s: Socket) => {
    s.on('data', createLineSplitter(onLine))
    s.on('error', () => {})
    s.on('close', () => {
      if (closing) return
      if (options.reconnectMs === undefined) return requestShutdown(lostGraceMs)
      backlog ??= []
      void reconnect(options.reconnectMs)
    })
  }
  const reconnect = async (everyMs: number) => {
    for (;;) {
      await new Promise((r) => setTimeout(r, everyMs))
      if (closing || shutdownGrace !== undefined) return
      const next = await connectOnce(path).catch(() => undefined)
      if (!next) continue
      socket = next
      attach(socket)
      const said = backlog ?? []
      backlog = undefined
      socket.write([...greeting.values(), ...said].join(''))
      return
    }
  }
  attach(socket)
  // Messages of one event-loop turn go out in one write: an invocation's start, logs and end
  // usually fit one turn, and each write is a syscall on the warm path.
  let batch = ''
  const flush = () => {
    const out = batch
    batch = ''
    if (!out) return
    if (backlog) {
      backlog.push(out)
      if (backlog.length > BACKLOG_WRITES) backlog.shift()
    } else if (!socket.destroyed && socket.writable) socket.write(out)
  }
  return {
    send(message) {
      if (batch === '') setImmediate(flush)
      const line = encodeLine(message)
      if (message.type === 'hello' || message.type === 'ready') greeting.set(message.type, line)
      batch += line
    },
    onShutdown(callback) {
      shutdownCallback = callback
      if (shutdownGrace !== undefined) callback(shutdownGrace)
    },
    close() {
      flush()
      closing ??= new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve()
        socket.end(() => resolve())
        setTimeout(() => {
          socket.destroy()
          resolve()
        }, 1000).unref()
      })
      return closing
    },
  }
}

async function connectOnce(path: string): Promise<Socket> {
  const socket = connect(path)
  await once(socket, 'connect') // rejects with the connection's error
  return socket
}
