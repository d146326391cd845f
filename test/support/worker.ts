import { once } from 'node:events'
import { request } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { encodeLine, createLineSplitter } from '../../runtime/protocol/ndjson.ts'
import { parseWorkerMessage } from '../../runtime/protocol/worker-message-schemas.ts'
import type {
  HostMessage,
  ReadyMessage,
  WorkerMessage,
} from '../../runtime/protocol/worker-messages.ts'
import { bundleWorker } from '../../runtime/worker/bundle.ts'
import { startProcess, type TestProcess } from './processes.ts'
import { tmpDir } from './tmp.ts'

/**
 * The functions worker on its own, driven over its two sockets the way a host does, without any
 * of thaw's host code: a hand-made control server (every line checked by the protocol's zod
 * schemas) and plain node:http requests to THAW_LISTEN.
 */
export interface DirectWorker {
  readonly process: TestProcess
  readonly listen: string
  /** Every control message so far, in order. */
  readonly messages: WorkerMessage[]
  /** Resolves with `ready`, rejects with the `fatal` message or an early exit. */
  readonly ready: Promise<ReadyMessage>
  send(message: HostMessage): void
  /** Closes the control connection, as a host that went away. */
  dropControl(): void
  request(
    functionName: string | undefined,
    path: string,
    init?: DirectRequest,
  ): Promise<{
    status: number
    headers: Record<string, string | string[] | undefined>
    body: Buffer
  }>
  /** Waits until a message matches. */
  waitFor(match: (m: WorkerMessage) => boolean, timeoutMs?: number): Promise<WorkerMessage>
}

export interface DirectRequest {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  params?: Record<string, string | null>
  /** A raw x-thaw-route-params value (overrides params). */
  rawParams?: string
}

export async function startDirectWorker(
  scriptRoot: string,
  options: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<DirectWorker> {
  const workerPath = await bundleWorker()
  const dir = await tmpDir('thaw-w-')
  const controlPath = join(dir, 'c.sock')
  const listen = join(dir, 'w.sock')
  const messages: WorkerMessage[] = []
  const watchers = new Set<() => void>()
  let socket: Socket | undefined
  const server = createServer((s) => {
    socket = s
    s.on(
      'data',
      createLineSplitter((line) => {
        messages.push(parseWorkerMessage(line))
        for (const w of watchers) w()
      }),
    )
    s.on('error', () => {})
  })
  server.listen(controlPath)
  await once(server, 'listening')
  const proc = startProcess(process.execPath, [...(options.nodeArgs ?? []), workerPath], {
    cwd: scriptRoot,
    env: {
      ...process.env,
      ...options.env,
      THAW_CONTROL: controlPath,
      THAW_LISTEN: listen,
      AzureWebJobsScriptRoot: scriptRoot,
    },
  })
  void proc.exited.then(() => {
    server.close()
    for (const w of watchers) w()
  })
  const waitFor = (match: (m: WorkerMessage) => boolean, timeoutMs = 20_000) =>
    new Promise<WorkerMessage>((resolve, reject) => {
      const check = () => {
        const m = messages.find(match)
        if (m) return finish(() => resolve(m))
        if (proc.child.exitCode !== null)
          finish(() => reject(new Error(`worker exited:\n${proc.output()}`)))
      }
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out:\n${proc.output()}`))),
        timeoutMs,
      )
      const finish = (f: () => void) => {
        clearTimeout(timer)
        watchers.delete(check)
        f()
      }
      watchers.add(check)
      check()
    })
  const ready = waitFor((m) => m.type === 'ready' || m.type === 'fatal').then((m) => {
    if (m.type === 'fatal') throw Object.assign(new Error(m.message), { fatal: m })
    return m as ReadyMessage
  })
  ready.catch(() => {})
  return {
    process: proc,
    listen,
    messages,
    ready,
    waitFor,
    send: (m) => void socket?.write(encodeLine(m)),
    dropControl: () => socket?.destroy(),
    request: (fn, path, init = {}) => directRequest(listen, fn, path, init),
  }
}

function directRequest(listen: string, fn: string | undefined, path: string, init: DirectRequest) {
  return new Promise<{
    status: number
    headers: Record<string, string | string[] | undefined>
    body: Buffer
  }>((resolve, reject) => {
    const headers: Record<string, string> = { host: 'localhost:7071', ...init.headers }
    if (fn !== undefined) headers['x-thaw-function'] = fn
    if (init.rawParams !== undefined) headers['x-thaw-route-params'] = init.rawParams
    else if (init.params) headers['x-thaw-route-params'] = JSON.stringify(init.params)
    const req = request(
      { socketPath: listen, path, method: init.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}
