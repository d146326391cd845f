/**
 * Warm-invocation overhead of the local runner's front door (routing, keys, dispatch to the worker
 * over its unix socket) over calling the worker's own server directly, with the real
 * @azure/functions library in both. Sequential requests on keep-alive connections, same client
 * (undici) for both paths. Prints what it measured; asserts nothing.
 *
 *   npx tsx test/bench/functions-overhead.bench.ts
 *   F=nothing P=/api/nothing npx tsx test/bench/functions-overhead.bench.ts   # another function
 *
 * The http-buffered fixture's `hello` takes a route parameter and writes one user log per call.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Pool } from 'undici'
import { createRunner } from '../../host/local/index.ts'
import { spawnWorker } from '../../host/worker/index.ts'
import { bundleWorker } from '../../runtime/worker/bundle.ts'

const APP = resolve(import.meta.dirname, '../fixtures/apps/http-buffered')
const WARMUP = 500
const N = Number(process.env.N ?? 3000)

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function measure(name: string, call: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await call()
  const times: number[] = []
  for (let i = 0; i < N; i++) {
    const t = performance.now()
    await call()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  const f = (ms: number) => `${(ms * 1000).toFixed(0)} µs`
  console.log(
    `${name.padEnd(44)} p50 ${f(percentile(times, 50))}  p90 ${f(percentile(times, 90))}  p99 ${f(percentile(times, 99))}`,
  )
  return times
}

async function get(pool: Pool, path: string, headers: Record<string, string> = {}) {
  const res = await pool.request({ method: 'GET', path, headers })
  await res.body.text()
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
}

const dir = await mkdtemp(join(tmpdir(), 'thaw-bench-'))
const bare = createServer((_req, res) => res.end('Hello, bench!')).listen(join(dir, 'bare.sock'))
const worker = await spawnWorker({
  workerPath: await bundleWorker(),
  scriptRoot: APP,
  env: { ...process.env } as Record<string, string>,
  socketDir: dir,
  name: 'bench',
})
const runner = createRunner({ scriptRoot: APP })
const url = await runner.ready
const barePool = new Pool('http://localhost', { socketPath: join(dir, 'bare.sock') })
const workerPool = new Pool('http://localhost', { socketPath: worker.ready.listen })
const runnerPool = new Pool(url.origin)
try {
  console.log(`${N} sequential GETs after ${WARMUP} warm-up requests, Node ${process.version}`)
  await measure('bare node:http server, unix socket', () => get(barePool, '/'))
  const direct = await measure('worker directly (x-thaw-function), unix socket', () =>
    get(workerPool, process.env.P ?? '/api/hello/bench', {
      'x-thaw-function': process.env.F ?? 'hello',
      'x-thaw-route-params': '{"name":"bench"}',
    }),
  )
  const front = await measure('through the runner (route, dispatch), TCP', () =>
    get(runnerPool, process.env.P ?? '/api/hello/bench'),
  )
  const overhead = percentile(front, 50) - percentile(direct, 50)
  console.log(`front-door overhead at p50: ${(overhead * 1000).toFixed(0)} µs`)
} finally {
  await Promise.all([barePool.close(), workerPool.close(), runnerPool.close()])
  await runner.dispose()
  await worker.stop(1000)
  bare.close()
  await rm(dir, { recursive: true, force: true })
}
