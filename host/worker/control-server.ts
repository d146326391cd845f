import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { ThawError } from '../../runtime/errors.ts'
import { createLineSplitter, encodeLine } from '../../runtime/protocol/ndjson.ts'
import { parseWorkerMessage } from '../../runtime/protocol/worker-message-schemas.ts'
import type { HostMessage, WorkerMessage } from '../../runtime/protocol/worker-messages.ts'

/** sun_path holds 108 bytes with its NUL (unix(7)). */
const MAX_SOCKET_PATH = 107

/** The host's end of one worker's control channel (runtime/protocol/worker-contract.ts). */
export interface ControlServer {
  readonly path: string
  /** Every valid message, in order. */
  onMessage(listener: (message: WorkerMessage) => void): void
  /** A line that is not a valid message (the line is dropped; the channel stays up). */
  onProtocolError(listener: (error: Error, line: string) => void): void
  /** Resolves when the worker's connection closes (or never connected and close() was called). */
  readonly disconnected: Promise<void>
  /** False when no worker is connected. */
  send(message: HostMessage): boolean
  /** Idempotent. */
  close(): Promise<void>
}

/**
 * Listens on a unix socket for exactly one worker connection and parses its NDJSON lines with
 * zod (parseWorkerMessage): the worker runs user code, its output is not trusted. A second
 * connection is refused.
 */
export async function listenControl(path: string): Promise<ControlServer> {
  // Node would bind a longer path cut short, and the node's start would fail later on a missing file.
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new ThawError(
      'SOCKET_PATH_TOO_LONG',
      `the node's control socket ${path} is ${Buffer.byteLength(path)} bytes, past the ${MAX_SOCKET_PATH} a unix socket's path may have: give the host a shorter state directory (--state)`,
      { fault: 'user' },
    )
  }
  await rm(path, { force: true })
  const messageListeners: ((m: WorkerMessage) => void)[] = []
  const errorListeners: ((e: Error, line: string) => void)[] = []
  let socket: Socket | undefined
  let markDisconnected!: () => void
  const disconnected = new Promise<void>((r) => (markDisconnected = r))
  const server: Server = createServer((s) => {
    if (socket) return void s.destroy()
    socket = s
    s.on('error', () => {})
    s.on('close', markDisconnected)
    s.on(
      'data',
      createLineSplitter((line) => {
        let message: WorkerMessage
        try {
          message = parseWorkerMessage(line)
        } catch (err) {
          for (const l of errorListeners) l(err as Error, line)
          return
        }
        for (const l of messageListeners) l(message)
      }),
    )
  })
  server.listen(path)
  await once(server, 'listening')
  let closing: Promise<void> | undefined
  return {
    path,
    disconnected,
    onMessage: (l) => void messageListeners.push(l),
    onProtocolError: (l) => void errorListeners.push(l),
    send(message) {
      if (!socket || socket.destroyed || !socket.writable) return false
      socket.write(encodeLine(message))
      return true
    },
    close() {
      closing ??= (async () => {
        socket?.end()
        socket?.destroy()
        if (!socket) markDisconnected()
        await new Promise<void>((r) => server.close(() => r()))
        await rm(path, { force: true })
      })()
      return closing
    },
  }
}
