/**
 * What idle nodes cost their host: an edge, then for each `--thaw` binary in turn (A B, B A, …
 * over `--rounds`) a `thaw host` with `--nodes` apps of the static C custom handler warmed (one
 * node each, asked once), then the host process's CPU time (utime + stime of /proc/<pid>/stat,
 * all its threads) over `--seconds` with no request. Compares, e.g., a checkout before and after
 * a change to how hosts follow their nodes. Needs root, runc, FUSE and gcc.
 *
 *   node --import tsx test/bench/idle-nodes.ts [--nodes 10] [--seconds 60] [--rounds 2]
 *        [--thaw /work/main/bin/thaw --thaw bin/thaw]   (default: this checkout's bin/thaw)
 *
 * Prints per round and binary: CPU ms over the window, as a share of one core, and the 1-minute
 * load average before and after. Asserts nothing.
 */
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { waitForStreamingArtifact } from '../../host/deploy/wait-for-artifact.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { runCleanup } from '../support/cleanup.ts'
import { pushStaticHandlerImage } from '../support/custom-handler.ts'
import { freePort, startProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '2' },
    thaw: { type: 'string', multiple: true },
  },
})
const NODES = Number(values.nodes)
const SECONDS = Number(values.seconds)
const ROUNDS = Number(values.rounds)
const SELF = resolve(import.meta.dirname, '../../bin/thaw')
const BINARIES = (values.thaw ?? [SELF]).map((b) => resolve(b))
const MASTER = 'master-key-of-the-idle-bench'
/** Clock ticks per second (getconf CLK_TCK: 100 on Linux). */
const TICKS = 100

async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS // utime, stime
}

async function measure(thaw: string, edgeUrl: string, image: string) {
  const port = await freePort()
  const state = await tmpDir('thaw-idle-bench-')
  const host = startProcess(thaw, [
    'host',
    ...['--port', String(port), '--edge', edgeUrl, '--pool', '0', '--state', state],
    ...['--master-key', MASTER],
  ])
  try {
    await host.waitFor(/listening on/, 180_000)
    const url = `http://127.0.0.1:${port}`
    for (let i = 0; i < NODES; i++) {
      const res = await fetch(`${url}/admin/apps`, {
        method: 'POST',
        headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `idle${i}`, image }),
      })
      if (res.status !== 201) throw new Error(`create idle${i}: ${res.status} ${await res.text()}`)
    }
    await Promise.all(
      Array.from({ length: NODES }, async (_, i) => {
        const res = await fetch(`${url}/idle${i}/api/hello/bench`)
        if (res.status !== 201) throw new Error(`idle${i}: ${res.status} ${await res.text()}`)
      }),
    )
    await new Promise((r) => setTimeout(r, 5000)) // the starts' own work settles
    const load0 = loadavg()[0]!
    const t0 = performance.now()
    const c0 = await cpuMs(host.pid)
    await new Promise((r) => setTimeout(r, SECONDS * 1000))
    const c1 = await cpuMs(host.pid)
    const wall = performance.now() - t0
    return { cpuMs: c1 - c0, share: (c1 - c0) / wall, load: [load0, loadavg()[0]!] }
  } finally {
    await host.stop(60_000)
  }
}

async function main() {
  const dir = await tmpDir('thaw-idle-edge-')
  const edgePort = await freePort()
  const edge = startProcess(SELF, [
    'edge',
    '--port',
    String(edgePort),
    '--store',
    join(dir, 'store'),
  ])
  await edge.waitFor(/"msg":"listening"/)
  const edgeUrl = `http://127.0.0.1:${edgePort}`
  const image = await pushStaticHandlerImage(`127.0.0.1:${edgePort}`, 'bench/idle')
  const client = createRegistryClient({ registry: edgeUrl })
  const manifest = (await client.getManifest('bench/idle', 'v1')).digest
  await waitForStreamingArtifact({ client, repository: 'bench/idle', manifest })
  await client.close()
  console.log(`${NODES} idle custom-handler nodes, host CPU over ${SECONDS} s`)
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? BINARIES : [...BINARIES].reverse()
    for (const thaw of order) {
      const r = await measure(thaw, edgeUrl, image)
      console.log(
        `round ${round + 1} ${thaw}: ${r.cpuMs.toFixed(0)} ms CPU, ${(r.share * 100).toFixed(2)} % of a core, load ${r.load.map((l) => l.toFixed(2)).join(' → ')}`,
      )
    }
  }
}

try {
  await main()
} finally {
  await runCleanup()
}
