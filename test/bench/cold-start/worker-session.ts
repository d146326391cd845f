import { chmod } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { runCommand } from '../../../host/os/run-command.ts'
import { listenControl, type ControlServer } from '../../../host/worker/control-server.ts'

/** Paths inside the container/node; the host side of `/.thaw/run` is the contender's own dir. */
export const WORKER_ENV = {
  THAW_CONTROL: '/.thaw/run/control.sock',
  THAW_LISTEN: '/.thaw/run/worker.sock',
  AzureWebJobsScriptRoot: '/app',
}
export const WORKER_ARGS = ['node', '/.thaw/worker/worker.mjs']

/** The host's end of one started worker: when it said hello and ready (performance.now()). */
export interface WorkerSession {
  readonly control: ControlServer
  readonly hello: Promise<number>
  readonly ready: Promise<number>
  /** Shutdown through the control channel, then close it. Idempotent. */
  close(): Promise<void>
}

/** Listens on `<hostRunDir>/control.sock` (mode 0666: the worker may not run as root). */
export async function listenWorker(hostRunDir: string): Promise<WorkerSession> {
  const control = await listenControl(join(hostRunDir, 'control.sock'))
  await chmod(control.path, 0o666)
  let onHello!: (t: number) => void
  let onReady!: (t: number) => void
  let onFail!: (err: Error) => void
  const hello = new Promise<number>((resolve, reject) => ((onHello = resolve), (onFail = reject)))
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve
    const fail = onFail
    onFail = (err) => (fail(err), reject(err))
  })
  hello.catch(() => {})
  ready.catch(() => {})
  control.onMessage((m) => {
    const now = performance.now()
    if (m.type === 'hello') onHello(now)
    else if (m.type === 'ready') onReady(now)
    else if (m.type === 'fatal') onFail(new Error(`worker failed to start: ${m.message}`))
  })
  void control.disconnected.then(() => onFail(new Error('the worker disconnected before ready')))
  let closing: Promise<void> | undefined
  return {
    control,
    hello,
    ready,
    close() {
      closing ??= (async () => {
        control.send({ type: 'shutdown', graceMs: 1000 })
        await Promise.race([control.disconnected, new Promise((r) => setTimeout(r, 3000))])
        await control.close()
      })()
      return closing
    },
  }
}

export interface FirstResponse {
  /** performance.now() when the first byte of the answer arrived. */
  firstByteAt: number
  status: number
  body: string
}

/**
 * GET /api/hello to the worker's socket, by hand on a raw connection so the first byte is seen
 * as it arrives (an HTTP client would report only once the headers are parsed).
 */
export function requestHello(socketPath: string, signal: AbortSignal): Promise<FirstResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    let firstByteAt = 0
    const chunks: Buffer[] = []
    const onAbort = () => socket.destroy(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('connect', () =>
      socket.write(
        'GET /api/hello HTTP/1.1\r\nHost: bench\r\nx-thaw-function: hello\r\nConnection: close\r\n\r\n',
      ),
    )
    socket.on('data', (chunk: Buffer) => {
      firstByteAt ||= performance.now()
      chunks.push(chunk)
    })
    socket.on('error', reject)
    socket.on('close', () => {
      signal.removeEventListener('abort', onAbort)
      const text = Buffer.concat(chunks).toString('utf8')
      const status = Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0)
      if (!firstByteAt) return reject(new Error('the worker closed without answering'))
      resolve({ firstByteAt, status, body: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
  })
}

/** echo 3 > /proc/sys/vm/drop_caches, after sync (page cache, dentries and inodes). */
export async function dropCaches(): Promise<void> {
  await runCommand('sync', [])
  await runCommand('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'])
}
