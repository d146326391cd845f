import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount } from '../support/mount-process.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { tmpDir } from '../support/tmp.ts'
import { diffSnapshots, snapshotDisk } from '../support/tree-snapshot.ts'
import { randomUmociImage } from '../support/umoci-image.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const STREAMING = 'application/vnd.thaw.streaming.v1'

interface Edge {
  url: string
  process: TestProcess
}

/** `thaw edge --upstream` as a real process on `store` (a restart passes the same one). */
async function startProxyEdge(upstream: string, store: string, proxy: object = {}): Promise<Edge> {
  const config = join(store, '..', 'edge.json')
  await writeFile(
    config,
    JSON.stringify({ region: 'test-kept', proxy: { tagTtlSeconds: 1, ...proxy } }),
  )
  const port = await freePort()
  const args = [
    'edge',
    '--config',
    config,
    '--port',
    String(port),
    '--store',
    store,
    '--upstream',
    upstream,
  ]
  const process = startProcess(THAW, args)
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://127.0.0.1:${port}`, process }
}

async function metric(edge: Edge, line: RegExp): Promise<number> {
  const text = await (await fetch(`${edge.url}/metrics`)).text()
  const found = text.split('\n').find((l) => line.test(l))
  return found ? Number(found.split(' ').pop()) : 0
}

async function streamingReferrers(
  base: string,
  repository: string,
  digest: string,
): Promise<{ digest: string }[]> {
  const res = await fetch(
    `${base}/v2/${repository}/referrers/${digest}?artifactType=${encodeURIComponent(STREAMING)}`,
  )
  expect(res.status).toBe(200)
  return ((await res.json()) as { manifests: { digest: string }[] }).manifests
}

async function pushedDigest(
  registry: TestRegistry,
  repository: string,
  tag: string,
): Promise<string> {
  const head = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  })
  return head.headers.get('docker-content-digest')!
}

/** The edge's conversion status of an image, asked until it is no longer pending or converting. */
async function convertedStatus(
  edge: Edge,
  repository: string,
  digest: string,
): Promise<{ state: string; artifact?: string }> {
  for (;;) {
    const res = await fetch(`${edge.url}/v2/${repository}/_thaw/status/${digest}`)
    const status = (await res.json()) as { state: string; artifact?: string }
    if (status.state !== 'pending' && status.state !== 'converting') return status
    await new Promise((r) => setTimeout(r, 200))
  }
}

const writes = (registry: TestRegistry) =>
  registry.requests().filter((r) => /^(PUT|POST|PATCH) /.test(r))

describe.skipIf(fuseUnavailable)('a proxy edge whose upstream refuses its pushes', () => {
  let dir: string
  let layout: string
  let upstream: TestRegistry
  let manifest: string
  const repository = 'ci/app'

  beforeAll(async () => {
    dir = await tmpDir('thaw-kept-artifacts-')
    layout = await randomUmociImage(dir, 14, { entries: 120, largeBytes: 300_000 })
    // CI pushes while the registry takes pushes; then it is put into read-only maintenance.
    const writable = await startDistribution()
    await run('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${layout}:t`,
      `docker://${writable.address}/${repository}:t`,
    ])
    manifest = await pushedDigest(writable, repository, 't')
    await writable.stop()
    upstream = await startDistribution({ dataDir: writable.dataDir, readOnly: true })
  })
  afterAll(() => upstream?.stop())

  it('keeps the artifact in its own store and streams the image to thaw mount as if it came from upstream, also after a restart', async () => {
    const store = join(await tmpDir('thaw-kept-edge-'), 'store')
    let edge = await startProxyEdge(upstream.url, store)
    const mount = await startMount({
      reference: `${upstream.address}/${repository}:t`,
      dir: join(dir, 'mnt'),
      cache: join(dir, 'cache'),
      edges: [edge.url],
      args: ['--no-background'],
    })
    await runReader('umoci', ['unpack', '--image', `${layout}:t`, join(dir, 'unpacked')])
    const want = snapshotDisk(join(dir, 'unpacked', 'rootfs'))
    const got = snapshotDisk(mount.dir)
    expect(diffSnapshots(want, got, () => true)).toEqual([])
    expect(got.size).toBeGreaterThan(100)
    const fetched = await mount.stop()
    expect(fetched.requests).toBeGreaterThan(0)

    // The edge tried the upstream, which refused (405), and kept the artifact itself.
    expect(writes(upstream).length).toBeGreaterThan(0)
    expect(upstream.process.output()).toMatch(/"(POST|PUT) \/v2\/ci\/app\/[^"]*" 405/)
    expect(await metric(edge, /^thaw_edge_outputs_published_total\{.*target="local"/)).toBe(1)
    expect(await metric(edge, /^thaw_edge_outputs_published_total\{.*target="upstream"/)).toBe(0)
    // Nothing reached the upstream (distribution 2.8 keeps referrers under the fallback tag).
    const fallbackTag = `sha256-${manifest.slice('sha256:'.length)}`
    const upstreamReferrers = await fetch(
      `${upstream.url}/v2/${repository}/manifests/${fallbackTag}`,
    )
    expect(upstreamReferrers.status).toBe(404)
    const [artifact] = await streamingReferrers(edge.url, repository, manifest)
    expect(artifact).toBeDefined()
    const byDigest = await fetch(`${edge.url}/v2/${repository}/manifests/${artifact!.digest}`)
    expect(byDigest.status).toBe(200)

    // Restarted on the same store: the artifact is still there, nothing is converted again.
    await edge.process.stop()
    edge = await startProxyEdge(upstream.url, store)
    expect(await streamingReferrers(edge.url, repository, manifest)).toEqual([artifact])
    expect((await convertedStatus(edge, repository, manifest)).artifact).toBe(artifact!.digest)
    expect(await metric(edge, /^thaw_edge_conversions_total\{.*result="converted"/)).toBe(0)
    await edge.process.stop()
  })

  it('never pushes upstream with publishUpstream off, though the upstream would take it', async () => {
    const writable = await startDistribution()
    try {
      await run('skopeo', [
        'copy',
        '--dest-tls-verify=false',
        `oci:${layout}:t`,
        `docker://${writable.address}/${repository}:t`,
      ])
      const before = writes(writable).length
      const store = join(await tmpDir('thaw-kept-edge-'), 'store')
      const edge = await startProxyEdge(writable.url, store, { publishUpstream: false })
      const status = await convertedStatus(edge, repository, manifest)
      expect(status.state).toBe('converted')
      const listed = await streamingReferrers(edge.url, repository, manifest)
      expect(listed.map((d) => d.digest)).toEqual([status.artifact])
      expect(writes(writable).length).toBe(before)
      expect(await metric(edge, /^thaw_edge_outputs_published_total\{.*target="local"/)).toBe(1)
      await edge.process.stop()
    } finally {
      await writable.stop()
    }
  })
})
