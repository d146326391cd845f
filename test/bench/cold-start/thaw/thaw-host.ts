import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { startChild, type BenchChild } from '../child.ts'
import type { BenchLink } from '../link.ts'
import { freePort } from '../ports.ts'
import { callHost, waitForHost, type HostAnswer, type HostCallOptions } from './host-client.ts'
import { THAW_BIN } from './thaw-edge.ts'

/**
 * `thaw host` started on the client's side of `link` (nsenter --net: only its network is in the
 * namespace; FUSE, overlayfs and runc work as on the host), talking to the edge through the link.
 * Everything the benchmark asks it goes through curl on the same side (host-client.ts).
 */
export interface BenchHost {
  readonly child: BenchChild
  readonly url: string
  readonly masterKey: string
  admin(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<HostAnswer>
  request(path: string, options?: HostCallOptions): Promise<HostAnswer>
  /** Resolves once the warm pool holds at least one ready node (what a host has between starts). */
  waitWarm(timeoutMs: number, signal?: AbortSignal): Promise<void>
  close(): Promise<void>
}

export interface StartHostOptions {
  link: BenchLink
  /** Base URL of the edge as reached from inside the link. */
  edgeUrl: string
  stateDir: string
  pool: number
  /** false: `--no-profiles` (no start records or replays a profile). Default true. */
  profiles?: boolean
}

export async function startBenchHost(o: StartHostOptions): Promise<BenchHost> {
  await mkdir(o.stateDir, { recursive: true })
  // A fresh namespace has nothing listening: a port free here is free in there.
  const port = await freePort()
  const masterKey = randomBytes(24).toString('hex')
  const [command, args] = o.link.wrap(THAW_BIN, [
    'host',
    '--port',
    String(port),
    '--edge',
    o.edgeUrl,
    '--state',
    o.stateDir,
    '--master-key',
    masterKey,
    '--pool',
    String(o.pool),
    ...(o.profiles === false ? ['--no-profiles'] : []),
  ])
  // The host's JSON log, kept whole beside its state (host.log) to be read after a run.
  const child = startChild(command, args, undefined, join(dirname(o.stateDir), 'host.log'))
  const url = `http://127.0.0.1:${port}`
  let alive = true
  void child.exited.then(() => (alive = false))
  try {
    await waitForHost(o.link, `${url}/healthz`, 120_000, undefined, () => alive)
  } catch (err) {
    await child.stop()
    throw new Error(`${(err as Error).message}\n${child.output().slice(-2000)}`)
  }
  const admin = (method: string, path: string, body?: unknown, signal?: AbortSignal) =>
    callHost(o.link, `${url}${path}`, { method, body, key: masterKey, signal })
  return {
    child,
    url,
    masterKey,
    admin,
    request: (path, options) => callHost(o.link, `${url}${path}`, options),
    async waitWarm(timeoutMs, signal) {
      const deadline = Date.now() + timeoutMs
      let last = ''
      while (Date.now() < deadline) {
        const answer = await admin('GET', '/admin/pool', undefined, signal)
        last = answer.body
        const ready = (JSON.parse(answer.body) as { warm?: { ready?: number } }).warm?.ready ?? 0
        if (answer.status === 200 && ready >= 1) return
        await new Promise((r) => setTimeout(r, 200))
      }
      throw new Error(`no warm node within ${timeoutMs} ms: ${last.slice(0, 500)}`)
    },
    close: () => child.stop(),
  }
}

/** Fails with the host's answer when it is not 2xx. */
export function expectOk(what: string, answer: HostAnswer): HostAnswer {
  if (answer.status < 200 || answer.status > 299)
    throw new Error(`${what}: HTTP ${answer.status} ${answer.body.slice(0, 1000)}`)
  return answer
}
