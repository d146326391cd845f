import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { EdgeLogger } from '../../registry-edge/observability/edge-logger.ts'
import { startContainerd, type BenchContainerd } from '../bench/cold-start/containerd.ts'
import { pushTarImage, waitForConversion } from '../support/convert-image.ts'
import { startTestEdge } from '../support/edge-client.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const onPath = (c: string) => process.env.PATH!.split(':').some((d) => existsSync(join(d, c)))
const missing = ['containerd', 'ctr', 'ctr-remote', 'gcc', 'runc'].filter((c) => !onPath(c))
const unavailable = fuseUnavailable || (missing.length > 0 && `${missing.join(', ')} not installed`)

interface EdgeRequest {
  method: string
  path: string
  status: number
}

/**
 * Record and replay through `thaw snapshotter` alone (issue 18): the first cold start of an image
 * the edge has no profile of is recorded on the snapshotter's lazy mount and uploaded to the edge,
 * which re-lays the image out; the second cold start, on a fresh snapshotter and a fresh
 * containerd (a new node), replays the edge's prefetch bundle. Each run: `ctr-remote image rpull`
 * then `ctr run` of a static program printing a file of the image. Counted at the edge (its
 * request log).
 */
describe.skipIf(unavailable)('thaw snapshotter records and replays', () => {
  it("records the image's first cold start and uploads it; the next node's cold start replays the bundle", async () => {
    const requests: EdgeRequest[] = []
    const logger: EdgeLogger = {
      info: (msg, f) => void (msg === 'request' && requests.push(f as unknown as EdgeRequest)),
      warn() {},
      error() {},
    }
    const edge = await startTestEdge({ conversion: {}, logger })
    const dir = await tmpDir('thaw-snap-prof-')
    const show = join(dir, 'show')
    await run('gcc', [
      '-static',
      '-O2',
      '-o',
      show,
      join(import.meta.dirname, 'fixtures/snapshotter/show.c'),
    ])
    const image = await pushTarImage(edge.url, 'snap/prof', 't', [
      [
        { name: 'bin', type: 'directory' },
        { name: 'bin/show', mode: 0o755, content: await readFile(show) },
        { name: 'data', type: 'directory' },
      ],
      [{ name: 'data/msg', content: 'hello from a recorded image\n' }],
    ])
    await waitForConversion(edge.url, 'snap/prof', image.digest)
    const reference = `${new URL(edge.url).host}/snap/prof:t`

    /** One node: a fresh snapshotter and containerd; pull, run, then `after`, then both stop. */
    const node = async (name: string, after: (snapshotter: TestProcess) => Promise<void>) => {
      const socket = join(dir, `${name}.sock`)
      const args = [
        'snapshotter',
        '--socket',
        socket,
        '--root',
        join(dir, name),
        '--edge',
        edge.url,
      ]
      args.push('--no-background') // only what the container reads crosses
      // The container exits at once: its start is recorded for 1 s from its first open.
      const env = { ...process.env, THAW_RECORD_LIMIT_MS: '1000' }
      const snapshotter = startProcess(THAW, args, { env })
      let containerd: BenchContainerd | undefined
      try {
        await snapshotter.waitFor(/"msg":"listening"/)
        containerd = await startContainerd(
          join(dir, `${name}-c`),
          { wrap: (c, a) => [c, a] },
          { proxySnapshotters: { thaw: socket } },
        )
        const from = requests.length
        await containerd.ctrRemote(
          ['image', 'rpull', '--plain-http', '--snapshotter', 'thaw', reference],
          { timeoutMs: 120_000 },
        )
        const id = `snap-${process.pid}-${name}`
        const ctrRun = ['run', '--rm', '--snapshotter', 'thaw', reference, id, '/bin/show']
        const out = await containerd.ctr([...ctrRun, '/data/msg'], { timeoutMs: 120_000 })
        expect(out.stdout).toBe('hello from a recorded image\n')
        await after(snapshotter)
        return { log: snapshotter.output(), requests: requests.slice(from) }
      } finally {
        // containerd first: removing its image removes the snapshots and the lazy mount.
        await containerd?.close()
        await snapshotter.stop()
      }
    }
    const profilePosts = (rs: EdgeRequest[]) =>
      rs.filter((r) => r.method === 'POST' && r.path.includes('/_thaw/profiles/'))
    const bundleGets = (rs: EdgeRequest[]) =>
      rs.filter((r) => r.method === 'GET' && r.path.includes('/_thaw/bundle/'))

    // First node: no profile at the edge yet, so the start is recorded and uploaded.
    const first = await node(
      'n1',
      async (s) => void (await s.waitFor(/"msg":"profile uploaded"/, 60_000)),
    )
    expect(first.log).toMatch(/"msg":"remote layer".*"replayed":false,"recording":true/)
    expect(profilePosts(first.requests).map((r) => r.status)).toEqual([201])
    expect(bundleGets(first.requests).map((r) => r.status)).toEqual([404])
    // The edge re-lays the image out by the profile.
    await waitForConversion(
      edge.url,
      'snap/prof',
      image.digest,
      (s) => s.state === 'converted' && Number(s.generation) >= 1,
    )

    // Second node: it replays the image's bundle and records nothing.
    const second = await node('n2', async () => {})
    expect(second.log).toMatch(/"msg":"remote layer".*"replayed":true,"recording":false/)
    expect(second.log).not.toMatch(/"recording":true/)
    expect(bundleGets(second.requests).map((r) => r.status)).toEqual([200])
    expect(profilePosts(second.requests)).toEqual([])
    // Everything the container read came with the bundle: the only blob containerd or the
    // snapshotter fetched is the image config (the rpull's); no range request of a frame.
    const blobs = second.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))
    expect(blobs.map((r) => r.path)).toEqual([`/v2/snap/prof/blobs/${image.blobs[0]}`])
  }, 240_000)
})
