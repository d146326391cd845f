import { mkdir, writeFile } from 'node:fs/promises'
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

/** `thaw edge --upstream` as a real process, with a fresh cache and conversion on (the default). */
async function startProxyEdge(upstream: string, config: object = {}): Promise<Edge> {
  const dir = await tmpDir('thaw-convert-on-ask-edge-')
  const file = join(dir, 'edge.json')
  await writeFile(
    file,
    JSON.stringify({ region: 'test-ask', proxy: { tagTtlSeconds: 1 }, ...config }),
  )
  const port = await freePort()
  const args = [
    'edge',
    '--config',
    file,
    '--port',
    String(port),
    '--store',
    join(dir, 'store'),
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

/** Waits (generously: the machine may be loaded) until `check` holds. */
async function until(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function referrers(
  edge: Edge,
  repository: string,
  digest: string,
): Promise<{ digest: string }[]> {
  const res = await fetch(
    `${edge.url}/v2/${repository}/referrers/${digest}?artifactType=${encodeURIComponent(STREAMING)}`,
  )
  expect(res.status).toBe(200)
  return ((await res.json()) as { manifests: { digest: string }[] }).manifests
}

describe.skipIf(fuseUnavailable)(
  'an image pushed straight to the registry behind a proxy edge',
  () => {
    let upstream: TestRegistry
    let dir: string
    let layout: string
    let manifest: string
    const repository = 'ci/app'

    beforeAll(async () => {
      upstream = await startDistribution()
      dir = await tmpDir('thaw-convert-on-ask-')
      layout = await randomUmociImage(dir, 11, { entries: 120, largeBytes: 300_000 })
      // CI pushes to the registry itself: no edge sees the push, so no edge converts it then.
      await run('skopeo', [
        'copy',
        '--dest-tls-verify=false',
        `oci:${layout}:t`,
        `docker://${upstream.address}/${repository}:t`,
      ])
      const head = await fetch(`${upstream.url}/v2/${repository}/manifests/t`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      })
      manifest = head.headers.get('docker-content-digest')!
    })
    afterAll(() => upstream?.stop())

    it('streams to thaw mount through the edge, which converts it once on the first asks and publishes it upstream for the other edges', async () => {
      const edge = await startProxyEdge(upstream.url)
      // Several hosts ask at once: each referrers request finds no artifact.
      const asks = await Promise.all(
        Array.from({ length: 6 }, () => referrers(edge, repository, manifest)),
      )
      expect(asks.every((a) => a.length === 0)).toBe(true)

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
      // umoci makes the rootfs and implicit parent directories at unpack time: mtimes differ there.
      expect(diffSnapshots(want, got, () => true)).toEqual([])
      expect(got.size).toBeGreaterThan(100)
      const fetched = await mount.stop()
      expect(fetched.requests).toBeGreaterThan(0)

      // Six asks and a mount: one conversion.
      expect(await metric(edge, /^thaw_edge_conversions_total\{.*result="converted"/)).toBe(1)
      expect(edge.process.output()).toMatch(/"msg":"conversion asked for"/)
      // Published to the upstream (distribution 2.8 has no referrers API: the fallback tag).
      const tag = `sha256-${manifest.slice('sha256:'.length)}`
      expect(upstream.requests()).toContain(`PUT /v2/${repository}/manifests/${tag}`)

      // Another edge of the region finds it there and converts nothing.
      const other = await startProxyEdge(upstream.url)
      const shared = await referrers(other, repository, manifest)
      expect(shared).toHaveLength(1)
      const status = await fetch(`${other.url}/v2/${repository}/_thaw/status/${manifest}`)
      expect(status.status).toBe(200)
      expect(await metric(other, /^thaw_edge_conversions_total\{.*result="converted"/)).toBe(0)
    })

    it('converts the images CI pushes to a scheduled repository before anyone asks, and publishes them upstream', async () => {
      const scheduled = 'ci/scheduled'
      const push = (from: string, tag: string) =>
        run('skopeo', [
          'copy',
          '--dest-tls-verify=false',
          `oci:${from}:t`,
          `docker://${upstream.address}/${scheduled}:${tag}`,
        ])
      await push(layout, '1') // before the edge starts: its first scan finds it
      const edge = await startProxyEdge(upstream.url, {
        conversion: { schedule: { intervalSeconds: 1, repositories: [scheduled] } },
      })
      const converted = /^thaw_edge_conversions_total\{.*result="converted"/
      await until(async () => (await metric(edge, converted)) === 1)
      // A later push is found by a later scan.
      const second = await randomUmociImage(await tmpDir('thaw-scheduled-'), 12, {
        entries: 10,
        largeBytes: 100_000,
      })
      await push(second, '2')
      await until(async () => (await metric(edge, converted)) === 2)
      expect(await metric(edge, /^thaw_edge_scheduled_conversions_total/)).toBe(2)
      expect(
        await metric(edge, /^thaw_edge_scheduled_scans_total\{.*result="done"/),
      ).toBeGreaterThan(1)

      // Nobody asked: the edge served no referrers or status request, only /metrics.
      expect(edge.process.output()).not.toMatch(/\/referrers\/|_thaw\/status/)
      // Both artifacts are upstream (the fallback tag of each image, on distribution 2.8).
      for (const tag of ['1', '2']) {
        const head = await fetch(`${upstream.url}/v2/${scheduled}/manifests/${tag}`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
        const digest = head.headers.get('docker-content-digest')!
        const fallback = `sha256-${digest.slice('sha256:'.length)}`
        const index = await fetch(`${upstream.url}/v2/${scheduled}/manifests/${fallback}`, {
          headers: { accept: 'application/vnd.oci.image.index.v1+json' },
        })
        expect(index.status).toBe(200)
        const { manifests } = (await index.json()) as { manifests: { artifactType?: string }[] }
        expect(manifests.map((m) => m.artifactType)).toEqual([STREAMING])
      }
    })

    it('ends the wait at once with the reason when the edge skips the conversion', async () => {
      const edge = await startProxyEdge(upstream.url)
      const off = await fetch(`${edge.url}/v2/ci/off/_thaw/settings`, {
        method: 'PUT',
        body: '{"streaming":false}',
      })
      expect(off.status).toBe(200)
      await run('skopeo', [
        'copy',
        '--dest-tls-verify=false',
        `oci:${layout}:t`,
        `docker://${upstream.address}/ci/off:t`,
      ])
      await mkdir(join(dir, 'mnt-off'), { recursive: true })
      const m = startProcess(THAW, [
        'mount',
        `${upstream.address}/ci/off:t`,
        join(dir, 'mnt-off'),
        '--cache',
        join(dir, 'cache-off'),
        '--edge',
        edge.url,
      ])
      expect(await m.exited).not.toBe(0)
      expect(m.output()).toMatch(
        /cannot be mounted lazily: the edge skipped its conversion: streaming is off for ci\/off.*STREAMING_DISABLED/,
      )
    })
  },
)
