/**
 * Warm invocations through the host (front door: address, route table, keys, the app's queue,
 * the hop to the node's worker, relaying the answer) versus the same request sent straight to the
 * node's worker (its unix socket, with the headers the host would add), on the sample app
 * deployed as an image by `thaw up`'s own code: a real edge, lazy mount, runc node. Also prints
 * the two cold starts `thaw up` made (ms; bytes and requests fetched from the edge).
 *
 * Built to be read on a shared machine: the load comes from a child process (load-client.ts), so
 * this process runs only the host and its CPU time per request is the host's own cost (load
 * disturbs CPU time far less than wall time); host and direct rounds alternate (H D, D H, ...)
 * so drift hits both; every figure is printed per round and as the median with its spread
 * (min–max), the ratios per pair of rounds. The load average is printed before and after.
 *
 *   node --import tsx test/bench/host-overhead.ts [--n 1000] [--concurrency 16] [--rounds 5]
 *        [--cpu-prof DIR]   (a .cpuprofile of this process over the host rounds)
 *        [--perf DIR]       (`perf record -g` of this process over the host rounds: on-CPU samples,
 *                            kernel included, which load does not skew; run node with
 *                            --perf-basic-prof so that perf names the JavaScript functions)
 *
 * Prints what it measured; asserts nothing.
 */
import { fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { createServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { encodeRouteParams, WorkerHeaders } from '../../runtime/protocol/worker-contract.ts'
import { runUp } from '../../host/up/run-up.ts'
import type { RoundRequest, RoundResult } from './load-client.ts'

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    'cpu-prof': { type: 'string' },
    perf: { type: 'string' },
  },
})
const N = Number(values.n)
const CONCURRENCY = Number(values.concurrency)
const ROUNDS = Number(values.rounds)

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

/**
 * The app's node: its worker's socket and its process (the pid file of its runc container), at
 * `<sandbox>/<instance>/<node>/`. Listed at fixed depth: a node's fs/root is a lazy mount this
 * very process serves, and must not be walked.
 */
async function findNode(sandboxDir: string): Promise<{ socket: string; pid: number }> {
  const found: string[] = []
  for (const instance of await readdir(sandboxDir, { withFileTypes: true })) {
    if (!instance.isDirectory()) continue
    for (const node of await readdir(join(sandboxDir, instance.name))) {
      const dir = join(sandboxDir, instance.name, node)
      if (
        await access(join(dir, 'fs/run/w.sock')).then(
          () => true,
          () => false,
        )
      )
        found.push(dir)
    }
  }
  if (found.length !== 1) throw new Error(`expected one node with a worker, found ${found.length}`)
  const pid = Number(await readFile(join(found[0]!, 'pid'), 'utf8'))
  return { socket: join(found[0]!, 'fs/run/w.sock'), pid }
}

/** CPU milliseconds a process and its live descendants used so far (/proc/<pid>/stat). */
async function treeCpuMs(pid: number): Promise<number> {
  const tick = 1000 / 100 // USER_HZ is 100 on Linux
  let total = 0
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  if (!stat) return 0
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  total += (Number(fields[11]) + Number(fields[12])) * tick // utime, stime
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  for (const child of children.split(' ').filter(Boolean)) total += await treeCpuMs(Number(child))
  return total
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const spread = (xs: number[], digits: number) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

interface Measured extends RoundResult {
  hostCpuUsPerRequest: number
  workerCpuUsPerRequest: number
}

const state = await mkdtemp(join(tmpdir(), 'thaw-host-bench-'))
const up = await runUp({
  stateDir: state,
  port: 0,
  edgePort: await freePort(),
  pool: 1,
  template: 'http-typescript',
  say: () => {},
})
const client = fork(join(import.meta.dirname, 'load-client.ts'), {
  execArgv: ['--import', 'tsx'],
  stdio: 'inherit',
})
try {
  const name = up.deployed.name
  const path = '/api/hello?name=bench'
  const hostHeader = new URL(up.host.url).host
  const node = await findNode(join(state, 'host', 'sandbox'))
  const common = { expect: 'Hello, bench!', n: N, warmup: 200, concurrency: CONCURRENCY }
  const viaHost: RoundRequest = {
    ...common,
    origin: up.host.url,
    path: `/${name}${path}`,
    headers: {},
  }
  const direct: RoundRequest = {
    ...common,
    origin: 'http://localhost',
    socketPath: node.socket,
    path,
    headers: {
      host: hostHeader,
      [WorkerHeaders.function]: 'hello',
      [WorkerHeaders.routeParams]: encodeRouteParams({}),
    },
    invocationIdHeader: WorkerHeaders.invocationId,
  }
  const profiler = values['cpu-prof'] ? new Session() : undefined
  if (profiler) {
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
  }

  const measure = async (r: RoundRequest, profile: boolean): Promise<Measured> => {
    const hostCpu = process.cpuUsage()
    const workerCpu = await treeCpuMs(node.pid)
    if (profile) await profiler?.post('Profiler.start')
    const perf =
      profile && values.perf
        ? spawn(
            'perf',
            [
              'record',
              '-q',
              '-g',
              '-F',
              '1999',
              '-p',
              String(process.pid),
              '-o',
              join(values.perf, `host-${Date.now()}.data`),
            ],
            { stdio: 'inherit' },
          )
        : undefined
    client.send(r)
    const answer = await new Promise<{ result?: RoundResult; error?: string }>((resolve) =>
      client.once('message', resolve),
    )
    if (profile && profiler) {
      const { profile: data } = await profiler.post('Profiler.stop')
      const file = join(values['cpu-prof']!, `host-${Date.now()}.cpuprofile`)
      await writeFile(file, JSON.stringify(data))
    }
    if (perf) {
      perf.kill('SIGINT')
      await once(perf, 'exit')
    }
    if (!answer.result) throw new Error(answer.error)
    const used = process.cpuUsage(hostCpu)
    const requests = answer.result.requests
    return {
      ...answer.result,
      hostCpuUsPerRequest: (used.user + used.system) / requests,
      workerCpuUsPerRequest: ((await treeCpuMs(node.pid)) - workerCpu) * (1000 / requests),
    }
  }

  console.log(
    `sample app ${up.deployed.reference}, node ${process.version}, N=${N}, concurrency ${CONCURRENCY}, ` +
      `${ROUNDS} rounds each (host and direct alternating), load average ${load()}`,
  )
  for (const [phase, record] of Object.entries(up.record.timings!)) {
    const replay = up.replay.timings![phase as 'total']
    console.log(
      `  cold start ${phase.padEnd(8)} recording ${record.toFixed(1).padStart(10)}   replaying ${replay.toFixed(1).padStart(10)}`,
    )
  }
  const host: Measured[] = []
  const straight: Measured[] = []
  const row = (label: string, m: Measured) =>
    console.log(
      `${label.padEnd(26)} p50 ${m.p50Ms.toFixed(3)} ms  p90 ${m.p90Ms.toFixed(3)} ms  ` +
        `p99 ${m.p99Ms.toFixed(3)} ms  ${m.requestsPerSecond.toFixed(0).padStart(5)} req/s  ` +
        `CPU/request: host ${m.hostCpuUsPerRequest.toFixed(0)} µs, worker ${m.workerCpuUsPerRequest.toFixed(0)} µs, ` +
        `client ${((m.clientCpuMs * 1000) / m.requests).toFixed(0)} µs`,
    )
  // One round of each first, not counted: the JIT and both connection pools warm up.
  row('warm-up: through the host', await measure(viaHost, false))
  row('warm-up: to the worker', await measure(direct, false))
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (['host', 'direct'] as const) : (['direct', 'host'] as const)
    for (const which of order) {
      const m = await measure(which === 'host' ? viaHost : direct, which === 'host')
      ;(which === 'host' ? host : straight).push(m)
      row(`${which === 'host' ? 'through the host' : 'straight to the worker'} (${round + 1})`, m)
    }
  }
  const pairs = host.map((h, i) => ({ h, d: straight[i]! }))
  console.log('medians (min–max) over the rounds:')
  for (const [label, ms] of [
    ['through the host', host],
    ['straight to the worker', straight],
  ] as const) {
    console.log(
      `  ${label.padEnd(24)} p50 ${spread(
        ms.map((m) => m.p50Ms),
        3,
      )} ms, ${spread(
        ms.map((m) => m.requestsPerSecond),
        0,
      )} req/s at ${CONCURRENCY}, host CPU ${spread(
        ms.map((m) => m.hostCpuUsPerRequest),
        0,
      )} µs/request, worker CPU ${spread(
        ms.map((m) => m.workerCpuUsPerRequest),
        0,
      )} µs/request`,
    )
  }
  console.log(
    `  host/direct throughput ${spread(
      pairs.map((p) => p.h.requestsPerSecond / p.d.requestsPerSecond),
      2,
    )}; p50 added ${spread(
      pairs.map((p) => p.h.p50Ms - p.d.p50Ms),
      3,
    )} ms (per pair of rounds)`,
  )
  console.log(`load average after: ${load()}`)
  profiler?.disconnect()
} finally {
  client.disconnect()
  await up.close()
  await rm(state, { recursive: true, force: true })
}
