/**
 * Range-read throughput and latency: the registry edge (origin mode, blob on its disk store, page
 * cache warm) versus CNCF distribution 2.8 (Debian's docker-registry, filesystem storage) serving
 * the same blob, side by side in one run. Both run as their own processes and log every request
 * to a file; the client is undici in this process, identical for both.
 *
 *   node --import tsx test/bench/edge-range.ts [--blob-mib 64] [--rounds 2]
 *
 * Prints what it measured; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile, open } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const ROOT = resolve(import.meta.dirname, '../..')
const { values: args } = parseArgs({
  options: { 'blob-mib': { type: 'string', default: '64' }, rounds: { type: 'string', default: '2' } },
})
const BLOB_BYTES = Number(args['blob-mib']) * 1024 * 1024
const ROUNDS = Number(args.rounds)
const CASES = [
  { rangeBytes: 64 * 1024, requests: 3000, concurrency: [1, 4, 16] },
  { rangeBytes: 1024 * 1024, requests: 800, concurrency: [1, 4, 16] },
]

interface Server {
  name: string
  url: string
  child: ChildProcess
}

interface Result {
  mbPerSec: number
  p50: number
  p99: number
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-bench-edge-'))
  const servers: Server[] = []
  try {
    const blob = randomBytes(BLOB_BYTES)
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    servers.push(await startDistribution(dir), await startEdge(dir))
    for (const s of servers) {
      await push(s.url, 'bench/blob', blob, digest)
      await readWhole(s.url, 'bench/blob', digest, blob.length) // warm the page cache
    }
    await checkRange(servers, digest, blob)
    console.log(`blob ${BLOB_BYTES / 1048576} MiB, ${ROUNDS} rounds (order alternates), ${describeMachine()}`)
    console.log('range   conc  server        MB/s   p50 ms   p99 ms')
    const ratios: string[] = []
    for (const c of CASES) {
      for (const concurrency of c.concurrency) {
        const totals = new Map<string, Result[]>()
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? servers : [...servers].reverse()
          for (const s of order) {
            const r = await measure(s.url, digest, blob.length, c.rangeBytes, c.requests, concurrency)
            totals.set(s.name, [...(totals.get(s.name) ?? []), r])
          }
        }
        const avg = new Map([...totals].map(([k, v]) => [k, average(v)]))
        for (const s of servers) {
          const r = avg.get(s.name)!
          console.log(
            `${kib(c.rangeBytes).padEnd(7)} ${String(concurrency).padStart(4)}  ${s.name.padEnd(12)} ${r.mbPerSec.toFixed(1).padStart(7)} ${r.p50.toFixed(3).padStart(8)} ${r.p99.toFixed(3).padStart(8)}`,
          )
        }
        const e = avg.get('edge')!
        const d = avg.get('distribution')!
        ratios.push(
          `${kib(c.rangeBytes)} x${concurrency}: throughput edge/distribution = ${(e.mbPerSec / d.mbPerSec).toFixed(2)}, p50 distribution/edge = ${(d.p50 / e.p50).toFixed(2)}`,
        )
      }
    }
    console.log('\nratios (> 1 means the edge is faster):')
    for (const line of ratios) console.log(`  ${line}`)
  } finally {
    for (const s of servers) await stop(s.child)
    await rm(dir, { recursive: true, force: true })
  }
}

/** Random aligned ranges of `size` bytes, `concurrency` in flight on as many connections. */
async function measure(url: string, digest: string, blobSize: number, size: number, count: number, concurrency: number): Promise<Result> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 })
  const latencies: number[] = []
  let next = 0
  const slots = Math.floor(blobSize / size)
  const worker = async () => {
    while (next < count) {
      next++
      const start = Math.floor(Math.random() * slots) * size
      const t0 = performance.now()
      const res = await pool.request({
        path: `/v2/bench/blob/blobs/${digest}`,
        method: 'GET',
        headers: { range: `bytes=${start}-${start + size - 1}` },
      })
      let got = 0
      for await (const chunk of res.body) got += (chunk as Buffer).length
      if (res.statusCode !== 206 || got !== size) throw new Error(`${url}: ${res.statusCode}, ${got} bytes`)
      latencies.push(performance.now() - t0)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - t0) / 1000
  await pool.close()
  latencies.sort((a, b) => a - b)
  return {
    mbPerSec: (count * size) / 1e6 / seconds,
    p50: latencies[Math.floor(latencies.length * 0.5)]!,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
  }
}

function average(results: Result[]): Result {
  const mean = (f: (r: Result) => number) => results.reduce((s, r) => s + f(r), 0) / results.length
  return { mbPerSec: mean((r) => r.mbPerSec), p50: mean((r) => r.p50), p99: mean((r) => r.p99) }
}

/** Both servers must return the right bytes, or the numbers mean nothing. */
async function checkRange(servers: Server[], digest: string, blob: Buffer): Promise<void> {
  const start = 12345
  const end = start + 65535
  for (const s of servers) {
    const res = await fetch(`${s.url}/v2/bench/blob/blobs/${digest}`, { headers: { range: `bytes=${start}-${end}` } })
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 206 || !body.equals(blob.subarray(start, end + 1))) throw new Error(`${s.name} served wrong bytes`)
  }
}

async function push(url: string, repo: string, blob: Buffer, digest: string): Promise<void> {
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  const location = new URL(post.headers.get('location')!, url)
  location.searchParams.set('digest', digest)
  const put = await fetch(location, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } })
  if (put.status !== 201) throw new Error(`push to ${url}: ${put.status} ${await put.text()}`)
}

async function readWhole(url: string, repo: string, digest: string, size: number): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`)
  const body = await res.arrayBuffer()
  if (body.byteLength !== size) throw new Error(`${url}: read ${body.byteLength} of ${size}`)
}

async function startDistribution(dir: string): Promise<Server> {
  const port = await freePort()
  const config = join(dir, 'distribution.yml')
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'distribution')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  )
  const child = await spawnLogged('docker-registry', ['serve', config], join(dir, 'distribution.log'))
  const url = `http://127.0.0.1:${port}`
  await waitReady(url)
  return { name: 'distribution', url, child }
}

async function startEdge(dir: string): Promise<Server> {
  const port = await freePort()
  const args = ['edge', '--port', String(port), '--store', join(dir, 'edge'), '--region', 'bench']
  const child = await spawnLogged(join(ROOT, 'bin/thaw'), args, join(dir, 'edge.log'))
  const url = `http://127.0.0.1:${port}`
  await waitReady(url)
  return { name: 'edge', url, child }
}

async function spawnLogged(command: string, args: string[], logFile: string): Promise<ChildProcess> {
  const log = await open(logFile, 'w')
  const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd] })
  await log.close()
  return child
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).ok) return
    } catch {}
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${url} did not come up`)
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await once(child, 'exit')
  clearTimeout(timer)
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

function kib(bytes: number): string {
  return bytes >= 1048576 ? `${bytes / 1048576}MiB` : `${bytes / 1024}KiB`
}

function describeMachine(): string {
  return `node ${process.version}`
}

await main()
