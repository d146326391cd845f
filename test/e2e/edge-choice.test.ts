import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { onCleanup } from '../support/cleanup.ts'
import { createVethNamespace } from '../support/veth-namespace.ts'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount } from '../support/mount-process.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

/**
 * Nearest edge, end to end (issue 14): a host with two edges of one image, the far one listed
 * first. The far edge runs in a network namespace of its own behind a veth pair capped by tbf
 * (as test/bench/cold-start/link.ts emulates a link; the kernel has no netem) and a proxy that
 * holds every request back (the round trip to another region). The host measures both, reads
 * through the near one (counted at each edge), and reads through the far one once the near one
 * is killed.
 *
 *   origin edge (image + artifact), on the veth's host end 10.215.n.1
 *     ├─ near edge: 127.0.0.1, proxy of the origin
 *     └─ far edge: inside the namespace on 10.215.n.2, proxy of the origin over the capped veth,
 *        reached by the host through the delaying proxy on 127.0.0.1
 */
const ns = `thawedge-${process.pid}`
const hostVeth = `teh${process.pid % 100000}`
const nsVeth = `ten${process.pid % 100000}`
const subnet = `10.215.${process.pid % 250}`

async function createFarLink(): Promise<void> {
  const link = await createVethNamespace({ name: ns, hostVeth, nsVeth, subnet, rateMbit: 20 })
  // After the processes inside it are stopped ('servers' runs first), also when a test failed.
  onCleanup('dirs', () => link.close())
}

interface Edge {
  url: string
  process: TestProcess
}

/** `thaw edge` listening on `host`; `netns`: run inside that network namespace. */
async function startEdge(o: { host: string; upstream?: string; netns?: string }): Promise<Edge> {
  const store = join(await tmpDir('thaw-edge-choice-'), 'store')
  const port = o.netns ? 5000 : await freePort()
  const args = ['edge', '--host', o.host, '--port', String(port), '--store', store]
  if (o.upstream) args.push('--upstream', o.upstream)
  const process = o.netns
    ? startProcess('nsenter', [`--net=/run/netns/${o.netns}`, THAW, ...args])
    : startProcess(THAW, args)
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://${o.host}:${port}`, process }
}

/** Blob bytes an edge served so far (its /metrics). */
async function blobBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => /^thaw_edge_bytes_served_total\{.*kind="blobs"/.test(l))
  return line ? Number(line.split(' ').pop()) : 0
}

async function until(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 200))
  }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe.skipIf(fuseUnavailable)('a host with a near and a far edge', () => {
  let dir: string
  let origin: Edge
  let near: Edge
  let far: Edge
  let farProxy: FaultProxy
  const files = { first: randomBytes(3 << 20), second: randomBytes(3 << 20) }
  const repository = 'choice/app'

  beforeAll(async () => {
    dir = await tmpDir('thaw-edge-choice-')
    await createFarLink()
    // A one-layer image of two incompressible files, pushed to the origin edge, which converts it.
    const layout = join(dir, 'layout')
    await run('umoci', ['init', '--layout', layout])
    await run('umoci', ['new', '--image', `${layout}:t`])
    await run('umoci', ['unpack', '--image', `${layout}:t`, join(dir, 'bundle')])
    writeFileSync(join(dir, 'bundle', 'rootfs', 'first.bin'), files.first)
    writeFileSync(join(dir, 'bundle', 'rootfs', 'second.bin'), files.second)
    await run('umoci', ['repack', '--image', `${layout}:t`, join(dir, 'bundle')])
    origin = await startEdge({ host: `${subnet}.1` })
    const address = origin.url.slice('http://'.length)
    await run('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${layout}:t`,
      `docker://${address}/${repository}:t`,
    ])
    ;[near, far] = await Promise.all([
      startEdge({ host: '127.0.0.1', upstream: origin.url }),
      startEdge({ host: `${subnet}.2`, upstream: origin.url, netns: ns }),
    ])
    farProxy = await startFaultProxy(far.url)
    farProxy.latencyMs = 300
    const head = await fetch(`${origin.url}/v2/${repository}/manifests/t`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
    const manifest = head.headers.get('docker-content-digest')
    await until(async () => {
      const res = await fetch(`${origin.url}/v2/${repository}/_thaw/status/${manifest}`)
      return ((await res.json()) as { state: string }).state === 'converted'
    })
  })
  afterAll(() => farProxy?.close())

  it('reads through the faster edge though the slower one is listed first, and through the slower one when the faster dies', async () => {
    const mount = await startMount({
      reference: `${origin.url.slice('http://'.length)}/${repository}:t`,
      dir: join(dir, 'mnt'),
      cache: join(dir, 'cache'),
      edges: [farProxy.url, near.url],
      args: ['--no-background', '--no-replay'],
    })
    // Both edges measured (a probe, GET /v2/, reached each).
    await until(async () => farProxy.requests.includes('GET /v2/'))
    await until(async () => near.process.output().includes('"path":"/v2/"'))

    const before = { near: await blobBytes(near.url), far: await blobBytes(far.url) }
    const first = await runReader('sha256sum', [join(mount.dir, 'first.bin')])
    expect(first.stdout.split(' ')[0]).toBe(sha256(files.first))
    const afterFirst = { near: await blobBytes(near.url), far: await blobBytes(far.url) }
    expect(afterFirst.near - before.near).toBeGreaterThan(files.first.length / 2)
    expect(afterFirst.far - before.far).toBe(0)

    await near.process.kill()
    const second = await runReader('sha256sum', [join(mount.dir, 'second.bin')])
    expect(second.stdout.split(' ')[0]).toBe(sha256(files.second))
    const afterSecond = await blobBytes(far.url)
    expect(afterSecond - afterFirst.far).toBeGreaterThan(files.second.length / 2)
    await mount.stop()
  })
})
