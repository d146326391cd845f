import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ThawError } from '../../runtime/errors.ts'
import { THAW_ROOT } from '../init/init-project.ts'

export interface EdgeChild {
  url: string
  pid: number
  /** SIGTERM (the edge drains), then SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>
}

/**
 * `thaw edge` in origin mode as a child process (host/ never imports registry-edge/, STYLE.md
 * rule 1), logging to `logFile`. Resolves once `/v2/` answers; a child that exits first is an error
 * that quotes the end of its log.
 */
export async function startEdgeChild(o: { port: number; store: string; logFile: string; signal?: AbortSignal }): Promise<EdgeChild> {
  const log = await open(o.logFile, 'a')
  const child = spawn(join(THAW_ROOT, 'bin/thaw'), ['edge', '--port', String(o.port), '--store', o.store], {
    stdio: ['ignore', log.fd, log.fd],
  })
  await log.close()
  const exited = once(child, 'exit')
  const url = `http://127.0.0.1:${o.port}`
  let stopping: Promise<void> | undefined
  const stop = (graceMs = 5000) =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    })())
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) {
      throw new ThawError('EDGE_FAILED', `the edge exited with ${child.exitCode} before answering; see ${o.logFile}`, { fault: 'system' })
    }
    const up = await fetch(`${url}/v2/`, { signal: o.signal }).then((r) => r.ok, () => false)
    if (up) return { url, pid: child.pid!, stop }
    await sleep(100, undefined, { signal: o.signal })
  }
  await stop()
  throw new ThawError('EDGE_FAILED', `the edge did not answer at ${url} within 20 s; see ${o.logFile}`, { fault: 'system' })
}
