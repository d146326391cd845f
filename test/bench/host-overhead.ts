/**
 * Warm invocations through the host (front door: host-name routing, route table, keys, the app's
 * queue, proxying the answer) versus dispatching the same call straight to the node's worker
 * (what the front door does after routing), on the sample app deployed as an image by `thaw up`'s
 * own code: a real edge, lazy mount, runc node. Sequential latency and concurrent throughput, same
 * process and client for both. Also prints the two cold-start breakdowns `thaw up` measured.
 *
 *   node --import tsx test/bench/host-overhead.ts [--n 2000] [--concurrency 16]
 *
 * Prints what it measured; asserts nothing.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { runUp } from '../../host/up/run-up.ts'

const { values } = parseArgs({ options: { n: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '16' } } })
const N = Number(values.n)
const CONCURRENCY = Number(values.concurrency)

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

async function latency(call: () => Promise<string>): Promise<{ p50: number; p90: number; p99: number }> {
  for (let i = 0; i < 200; i++) await call()
  const times: number[] = []
  for (let i = 0; i < N; i++) {
    const t = performance.now()
    const body = await call()
    times.push(performance.now() - t)
    if (body !== 'Hello, bench!') throw new Error(`unexpected answer ${JSON.stringify(body)}`)
  }
  times.sort((a, b) => a - b)
  return { p50: percentile(times, 50), p90: percentile(times, 90), p99: percentile(times, 99) }
}

async function throughput(call: () => Promise<string>): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < N) await call()
    }),
  )
  return N / ((performance.now() - started) / 1000)
}

const state = await mkdtemp(join(tmpdir(), 'thaw-host-bench-'))
const up = await runUp({ stateDir: state, port: 0, edgePort: await freePort(), pool: 1, template: 'http-typescript', say: () => {} })
try {
  const name = up.deployed.name
  const app = up.host.apps.get(name)!
  const path = '/api/hello?name=bench'
  const client = new Pool(up.host.url, { connections: CONCURRENCY })
  const viaHost = async () => {
    const res = await client.request({ path: `/${name}${path}`, method: 'GET' })
    return res.body.text()
  }
  const direct = async () => {
    const slot = await up.host.pool.nodesOf(app).acquire()
    try {
      const out = await slot.started.client.dispatch({
        functionName: 'hello',
        params: {},
        invocationId: randomUUID(),
        method: 'GET',
        path,
        headers: { host: new URL(up.host.url).host },
        body: null,
      })
      return await text(out.body)
    } finally {
      slot.release()
    }
  }
  const ms = (v: number) => `${(v * 1000).toFixed(0)} µs`
  console.log(`sample app ${up.deployed.reference}, node ${process.version}, N=${N}, concurrency ${CONCURRENCY}`)
  for (const [phase, record] of Object.entries(up.record.timings!)) {
    console.log(`  cold start ${phase.padEnd(8)} recording ${record.toFixed(1).padStart(8)} ms   replaying ${up.replay.timings![phase as 'total'].toFixed(1).padStart(8)} ms`)
  }
  const rows: [string, Awaited<ReturnType<typeof latency>>, number][] = []
  for (let round = 0; round < 2; round++) {
    for (const [label, call] of [['through the host', viaHost], ['straight to the worker', direct]] as const) {
      rows.push([`${label} (round ${round + 1})`, await latency(call), await throughput(call)])
    }
  }
  for (const [label, l, rps] of rows) {
    console.log(`${label.padEnd(34)} p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  ${rps.toFixed(0)} req/s at ${CONCURRENCY}`)
  }
  const host = rows.filter((r) => r[0].startsWith('through'))
  const worker = rows.filter((r) => r[0].startsWith('straight'))
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(
    `ratio host/direct: p50 latency ${(median(host.map((r) => r[1].p50)) / median(worker.map((r) => r[1].p50))).toFixed(2)}, ` +
      `throughput ${(median(host.map((r) => r[2])) / median(worker.map((r) => r[2]))).toFixed(2)}`,
  )
  await client.close()
} finally {
  await up.close()
  await rm(state, { recursive: true, force: true })
}
