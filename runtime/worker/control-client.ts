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

export async function connectControl(path: string, lostGraceMs = 1000): Promise<ControlClient> {
  const socket: Socket = connect(path)
  await once(socket, 'connect')
  let shutdownCallback: ((graceMs: number) => void) | undefined
  let shutdownGrace: number | undefined
  let closing: Promise<void> | undefined
  const requestShutdown = (graceMs: number) => {
    if (shutdownGrace !== undefined) return
    shutdownGrace = graceMs
    shutdownCallback?.(graceMs)
  }
  // The host's messages are validated by hand: the worker does not bundle zod.
  const onData = createLineSplitter((line) => {
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
  })
  socket.on('data', onData)
  socket.on('error', () => {})
  socket.on('close', () => {
    if (!closing) requestShutdown(lostGraceMs)
  })
  // Messages of one event-loop turn go out in one write: an invocation's start, logs and end
  // usually fit one turn, and each write is a syscall on the warm path.
  let batch = ''
  const flush = () => {
    const out = batch
    batch = ''
    if (out && !socket.destroyed && socket.writable) socket.write(out)
  }
  return {
    send(message) {
      if (batch === '') setImmediate(flush)
      batch += encodeLine(message)
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
