/**
 * The load generator of host-overhead.ts, run as a child process so that the host's process does
 * nothing but host (its CPU time per request is then the host's own). Told over IPC where to send
 * (an origin, or a unix socket: the worker's) and what (path, headers), it runs one round:
 * warm-up, N sequential requests (latency), then N requests at `concurrency` (throughput), and
 * answers with the figures and its own CPU time.
 */
import { randomUUID } from 'node:crypto'
import { Pool } from 'undici'

export interface RoundRequest {
  origin: string
  socketPath?: string
  path: string
  headers: Record<string, string>
  /** Header set to a fresh UUID on every request (the worker's invocation id). */
  invocationIdHeader?: string
  expect: string
  n: number
  warmup: number
  concurrency: number
}

export interface RoundResult {
  p50Ms: number
  p90Ms: number
  p99Ms: number
  requestsPerSecond: number
  /** Requests sent in all (warm-up, latency and throughput). */
  requests: number
  clientCpuMs: number
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

async function round(r: RoundRequest): Promise<RoundResult> {
  const cpu = process.cpuUsage()
  const pool = new Pool(r.origin, {
    connections: r.concurrency,
    ...(r.socketPath && { socketPath: r.socketPath }),
  })
  const call = async () => {
    const headers = r.invocationIdHeader
      ? { ...r.headers, [r.invocationIdHeader]: randomUUID() }
      : r.headers
    const res = await pool.request({ path: r.path, method: 'GET', headers })
    const body = await res.body.text()
    if (res.statusCode !== 200 || body !== r.expect)
      throw new Error(`unexpected answer ${res.statusCode} ${JSON.stringify(body)}`)
  }
  try {
    for (let i = 0; i < r.warmup; i++) await call()
    const times: number[] = []
    for (let i = 0; i < r.n; i++) {
      const t = performance.now()
      await call()
      times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    let next = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: r.concurrency }, async () => {
        while (next++ < r.n) await call()
      }),
    )
    const requestsPerSecond = r.n / ((performance.now() - started) / 1000)
    const used = process.cpuUsage(cpu)
    return {
      p50Ms: percentile(times, 50),
      p90Ms: percentile(times, 90),
      p99Ms: percentile(times, 99),
      requestsPerSecond,
      requests: r.warmup + 2 * r.n,
      clientCpuMs: (used.user + used.system) / 1000,
    }
  } finally {
    await pool.close()
  }
}

process.on('message', (m: RoundRequest) => {
  round(m).then(
    (result) => process.send!({ result }),
    (err: unknown) => process.send!({ error: String((err as Error).stack ?? err) }),
  )
})
process.on('disconnect', () => process.exit(0))
