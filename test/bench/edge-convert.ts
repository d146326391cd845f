/**
 * Conversion in a running edge, end to end: `thaw edge` on a fresh store, the image pushed with
 * skopeo from an OCI layout, then `_thaw/status` polled until the streaming artifact exists.
 * Prints the push time, the time from the end of the push to `converted`, the throughput over the
 * original compressed layers, the artifact's size against the image, and the latency of `GET /v2/`
 * while the conversion runs (the converter works on a worker thread; the event loop must stay free).
 *
 *   npx tsx test/bench/edge-convert.ts [--layout DIR] [--tag TAG] [--allow-devices]
 *     default: the 28-layer image of shared/peers/11-build-images.sh ($THAW_CACHE/peers/oci/layout:multi),
 *     a debootstrap tree with device nodes in /dev: refused unless --allow-devices (config
 *     conversion.limits.allowDevices)
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { THAW_CACHE } from '../support/debian-rootfs.ts'

const { values: args } = parseArgs({
  options: {
    layout: { type: 'string', default: join(THAW_CACHE, 'peers/oci/layout') },
    tag: { type: 'string', default: 'multi' },
    'allow-devices': { type: 'boolean', default: false },
  },
})
const MB = 1e6
const THAW = resolve(import.meta.dirname, '../../bin/thaw')

interface Descriptor {
  digest: string
  size: number
  artifactType?: string
}

function layoutManifest(layout: string, tag: string): { digest: string; layers: Descriptor[] } {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: (Descriptor & { annotations?: Record<string, string> })[]
  }
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  )
  if (!entry) throw new Error(`${layout} has no tag ${tag}`)
  const manifest = JSON.parse(
    readFileSync(join(layout, 'blobs', ...entry.digest.split(':')), 'utf8'),
  ) as {
    layers: Descriptor[]
  }
  return { digest: entry.digest, layers: manifest.layers }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

const image = layoutManifest(args.layout, args.tag)
const original = image.layers.reduce((n, l) => n + l.size, 0)
const store = mkdtempSync(join(tmpdir(), 'thaw-bench-edge-convert-'))
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const config = join(store, 'config.json')
writeFileSync(
  config,
  JSON.stringify({ conversion: { limits: { allowDevices: args['allow-devices'] } } }),
)
const edge = spawn(
  THAW,
  ['edge', '--port', String(port), '--store', join(store, 'edge'), '--config', config],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
try {
  await new Promise<void>((ok, fail) => {
    let out = ''
    edge.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      if (out.includes('"msg":"listening"')) ok()
    })
    edge.once('exit', () => fail(new Error('edge exited')))
  })
  edge.stdout!.resume()

  let t = performance.now()
  const push = spawnSync(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${args.layout}:${args.tag}`,
      `docker://127.0.0.1:${port}/bench/image:${args.tag}`,
    ],
    { stdio: 'inherit' },
  )
  if (push.status !== 0) throw new Error('skopeo copy failed')
  const pushSeconds = (performance.now() - t) / 1000

  t = performance.now()
  const latencies: number[] = []
  let status: { state: string; artifact?: string; reason?: string } = { state: 'pending' }
  while (status.state === 'pending' || status.state === 'converting') {
    const s = performance.now()
    await (await fetch(`${url}/v2/`)).arrayBuffer()
    latencies.push(performance.now() - s)
    const res = await fetch(`${url}/v2/bench/image/_thaw/status/${image.digest}`)
    if (res.status === 200) status = (await res.json()) as typeof status
    else await res.arrayBuffer()
    await new Promise((r) => setTimeout(r, 100))
  }
  const convertSeconds = (performance.now() - t) / 1000
  if (status.state !== 'converted') throw new Error(`conversion ${status.state}: ${status.reason}`)

  const artifact = (await (
    await fetch(`${url}/v2/bench/image/manifests/${status.artifact}`)
  ).json()) as {
    layers: Descriptor[]
  }
  const [index, ...blobs] = artifact.layers
  const streaming = blobs.reduce((n, b) => n + b.size, 0)
  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!
  console.log(
    `image ${args.layout}:${args.tag}: ${image.layers.length} layers, ${(original / MB).toFixed(1)} MB compressed`,
  )
  console.log(`skopeo push: ${pushSeconds.toFixed(2)} s`)
  console.log(
    `push end -> converted: ${convertSeconds.toFixed(2)} s, ${(original / MB / convertSeconds).toFixed(1)} MB/s of original ` +
      `compressed layers (includes worker start and publishing)`,
  )
  console.log(
    `artifact: index ${(index!.size / 1024).toFixed(0)} KiB + streaming blobs ${(streaming / MB).toFixed(1)} MB = ` +
      `${(((index!.size + streaming) / original - 1) * 100).toFixed(1)}% against the original layers`,
  )
  console.log(
    `GET /v2/ during conversion: ${latencies.length} requests, p50 ${pct(0.5).toFixed(1)} ms, ` +
      `p99 ${pct(0.99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
  )
} finally {
  edge.kill('SIGTERM')
  await new Promise((r) => edge.once('exit', r))
  rmSync(store, { recursive: true, force: true })
}
