import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { onCleanup } from '../support/cleanup.ts'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { readLayoutImage } from '../support/edge-image.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import {
  buildBundle,
  pushStreamingImage,
  type PushedStreamingImage,
} from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { criClient } from '../support/cri-client.ts'
import { pushPauseImage } from '../support/pause-image.ts'
import {
  CTR_NAMESPACE,
  startContainerd,
  type BenchContainerd,
} from '../bench/cold-start/containerd.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const onPath = (c: string) => process.env.PATH!.split(':').some((d) => existsSync(join(d, c)))
const missing = ['containerd', 'ctr', 'ctr-remote', 'umoci', 'skopeo', 'gcc', 'runc'].filter(
  (c) => !onPath(c),
)
const unavailable = fuseUnavailable || (missing.length > 0 && `${missing.join(', ')} not installed`)
const BIG = 8 * 2 ** 20

/**
 * `thaw snapshotter` as containerd 1.6's proxy snapshotter (Debian's containerd with its own root,
 * state and socket; stargz's `ctr-remote image rpull` passes the remote-snapshot labels). The image:
 * layer 1 a static program, a file to be deleted and 8 MiB of random bytes nobody reads; layer 2
 * a message and the whiteout. Every pull crosses a counting proxy in front of a real registry.
 */
describe.skipIf(unavailable)('thaw snapshotter under containerd', () => {
  let registry: TestRegistry
  let proxy: FaultProxy
  let layout: string
  let image: PushedStreamingImage
  let snapshotter: TestProcess
  let containerd: BenchContainerd
  let root: string
  const layoutOf = { cri: '' }
  let criImage: PushedStreamingImage
  let snapshotterArgs: string[]
  let metricsPort = 0
  const ctr = (args: string[]) => containerd.ctr(args, { timeoutMs: 120_000 })
  const runIn = async (reference: string, id: string): Promise<string> =>
    (
      await ctr([
        'run',
        '--rm',
        '--snapshotter',
        'thaw',
        reference,
        id,
        '/bin/show',
        '/data/msg',
        '/data/gone',
      ])
    ).stdout

  beforeAll(async () => {
    const dir = await tmpDir('thaw-snap-')
    layout = await buildLayout(join(dir, 'a'), 'hello from layer 2')
    const plain = await buildLayout(join(dir, 'p'), 'hello from a plain image')
    layoutOf.cri = await buildLayout(join(dir, 'k'), 'hello through the CRI')
    registry = await startDistribution()
    proxy = await startFaultProxy(registry.url)
    image = await pushStreamingImage({
      registry: registry.url,
      repository: 'snap/app',
      layout,
      tag: 't',
    })
    criImage = await pushStreamingImage({
      registry: registry.url,
      repository: 'snap/cri',
      layout: layoutOf.cri,
      tag: 't',
    })
    await run('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${plain}:t`,
      `docker://${registry.address}/snap/plain:t`,
    ])
    // The pods' sandbox image, straight from the registry (not counted by the proxy).
    const sandboxImage = await pushPauseImage(registry.address)
    root = join(dir, 'r')
    const socket = join(dir, 's.sock')
    metricsPort = await freePort()
    snapshotterArgs = ['snapshotter', '--socket', socket, '--root', root, '--no-background']
    snapshotterArgs.push('--metrics-address', `127.0.0.1:${metricsPort}`)
    snapshotter = startProcess(THAW, snapshotterArgs)
    await snapshotter.waitFor(/"msg":"listening"/)
    containerd = await startContainerd(
      join(dir, 'c'),
      { wrap: (c, a) => [c, a] },
      {
        proxySnapshotters: { thaw: socket },
        cri: { snapshotter: 'thaw', plainHttp: [proxy.address, registry.address], sandboxImage },
      },
    )
    onCleanup('servers', () => containerd.close())
  }, 120_000)

  afterAll(async () => {
    // containerd first: removing its images removes their snapshots through the snapshotter.
    await containerd?.close()
    await snapshotter?.stop()
  })

  it('runs a thaw image lazily: the layers are never downloaded, the edge serves only what was read', async () => {
    const reference = `${proxy.address}/snap/app:t`
    const before = proxy.requests.length
    const bytesBefore = proxy.bytes
    await containerd.ctrRemote(
      ['image', 'rpull', '--plain-http', '--snapshotter', 'thaw', reference],
      {
        timeoutMs: 120_000,
      },
    )
    expect(await runIn(reference, `snap-${process.pid}-lazy`)).toBe(
      'hello from layer 2\nmissing /data/gone\n',
    )

    const requests = proxy.requests.slice(before)
    const original = await readLayoutImage(layout, 't')
    const layers = JSON.parse(original.bytes.toString()).layers.map(
      (l: { digest: string }) => l.digest,
    )
    for (const layer of layers) expect(requests.filter((r) => r.includes(layer))).toEqual([])
    // What crossed: manifests, the artifact and its index, and frames of the files read. The
    // 8 MiB nobody read (random: frames as large as the file) never did.
    const streamBlobs = image.artifact.blobs.map((b) => b.digest)
    const ranges = requests.filter((r) => streamBlobs.some((d) => r.includes(d)))
    expect(ranges.length).toBeGreaterThan(0)
    expect(proxy.bytes - bytesBefore).toBeLessThan(BIG / 2)

    // The lazy layer is one FUSE mount; containerd sees every layer committed under its chain ID.
    const fuse = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(join(root, 'mnt')))
    expect(fuse).toHaveLength(1)
    const list = (await ctr(['snapshots', '--snapshotter', 'thaw', 'ls'])).stdout
    expect(
      list
        .trim()
        .split('\n')
        .slice(1)
        .filter((l) => /Committed/.test(l)),
    ).toHaveLength(layers.length)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    expect(metrics).toContain(
      `thaw_snapshotter_remote_prepares_total{result="lazy"} ${layers.length}`,
    )
  }, 180_000)

  async function viewLabelInfoUsage(view: string, top: string): Promise<void> {
    const mounts = JSON.parse(
      (await ctr(['snapshots', '--snapshotter', 'thaw', 'view', '--mounts', view, top])).stdout,
    )
    // A view of the lazy layer alone: its FUSE mount, bound read-only.
    expect(mounts).toEqual([
      {
        Type: 'bind',
        Source: expect.stringContaining(join(root, 'mnt')),
        Options: ['ro', 'rbind'],
      },
    ])
    await ctr(['snapshots', '--snapshotter', 'thaw', 'label', view, 'test=yes'])
    const info = JSON.parse(
      (await ctr(['snapshots', '--snapshotter', 'thaw', 'info', view])).stdout,
    )
    expect(info).toMatchObject({ Name: view, Parent: top, Kind: 'View', Labels: { test: 'yes' } })
    const usage = (await ctr(['snapshots', '--snapshotter', 'thaw', 'usage', view])).stdout
    expect(usage).toMatch(new RegExp(`${view}\\s`))
  }

  it('answers the rest of the API through containerd: view, label (Update), usage, info', async () => {
    const chain = (await ctr(['snapshots', '--snapshotter', 'thaw', 'ls'])).stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[2] === 'Committed')
    // The top layer: the committed snapshot that is nobody's parent.
    const top = chain.find((c) => !chain.some((o) => o[1] === c[0]))![0]!
    // ctr's snapshot commands hold no lease: containerd's garbage collector (run after the last
    // test's removals) may take the view between two commands. Then the steps start again.
    let view = ''
    for (let attempt = 0; ; attempt++) {
      view = `v-${process.pid}-${attempt}`
      try {
        await viewLabelInfoUsage(view, top)
        break
      } catch (err) {
        if (attempt >= 3 || !/not found/.test(String(err))) throw err
      }
    }
    await ctr(['snapshots', '--snapshotter', 'thaw', 'rm', view])
    await expect(ctr(['snapshots', '--snapshotter', 'thaw', 'info', view])).rejects.toThrow(
      /not found/,
    )
  }, 60_000)

  it('falls back to an ordinary pull and unpack for an image without a streaming artifact', async () => {
    const reference = `${proxy.address}/snap/plain:t`
    const before = proxy.requests.length
    await containerd.ctrRemote(
      ['image', 'rpull', '--plain-http', '--snapshotter', 'thaw', reference],
      {
        timeoutMs: 120_000,
      },
    )
    expect(await runIn(reference, `snap-${process.pid}-plain`)).toBe(
      'hello from a plain image\nmissing /data/gone\n',
    )
    const manifest = (await ctr(['image', 'ls'])).stdout
      .split('\n')
      .find((l) => l.startsWith(reference))
    expect(manifest).toBeDefined()
    // Both layers were downloaded (skopeo may have recompressed them: count by GETs of blobs).
    const gets = proxy.requests
      .slice(before)
      .filter((r) => r.startsWith('GET /v2/snap/plain/blobs/'))
    expect(gets.length).toBeGreaterThanOrEqual(3) // config + two layers
  }, 180_000)

  it("starts a pod through containerd's CRI plugin as the kubelet does, lazily, replaying the image's bundle", async () => {
    const reference = `${proxy.address}/snap/cri:t`
    const before = proxy.requests.length
    // The edge has a prefetch bundle of this image (a start that read these two files).
    proxy.bundle = await buildBundle(criImage, ['bin/show', 'data/msg'])
    const cri = criClient(containerd.socket)
    let pod: Awaited<ReturnType<typeof cri.runPod>> | undefined
    try {
      expect(await cri.pullImage(reference)).toMatch(/^sha256:/)
      // RunPodSandbox (the pause image built here, host network), CreateContainer, StartContainer.
      pod = await cri.runPod({
        name: `snap-${process.pid}-pod`,
        image: reference,
        command: ['/bin/show', '/data/msg', '/data/gone'],
        logDirectory: await tmpDir('thaw-pod-logs-'),
      })
    } finally {
      cri.close()
    }
    expect(pod).toMatchObject({ exitCode: 0, log: 'hello through the CRI\nmissing /data/gone\n' })
    const labels = snapshotter
      .output()
      .match(/"msg":"remote layer".*"reference":"[^"]*snap\/cri@sha256:/g)
    expect(labels).toHaveLength(2) // both layers, by the CRI labels (pinned to cri.manifest-digest)
    expect(snapshotter.output()).toMatch(/"remote layer".*snap\/cri@.*"top":true.*"replayed":true/)
    proxy.bundle = undefined
    const requests = proxy.requests.slice(before)
    const original = await readLayoutImage(layoutOf.cri, 't')
    for (const layer of original.blobs.slice(1))
      expect(requests.filter((r) => r.includes(layer))).toEqual([])
    // The bundle was streamed in: everything the container read came with it, no range request.
    expect(requests.filter((r) => r.includes('/_thaw/bundle/'))).toHaveLength(1)
    expect(requests.filter((r) => r.includes('bytes='))).toEqual([])
  }, 120_000)

  it('a container reading its lazy image goes on through a SIGKILL of the snapshotter, and the restarted one serves new containers', async () => {
    // A running container that looks up a new name in its image ten times a second.
    const looper = startProcess('ctr', [
      '--address',
      containerd.socket,
      '-n',
      CTR_NAMESPACE,
      'run',
      '--rm',
      '--snapshotter',
      'thaw',
      `${proxy.address}/snap/app:t`,
      `snap-${process.pid}-loop`,
      '/bin/show',
      '--loop',
      '600',
      '/data',
    ])
    await looper.waitFor(/^tick 3 missing$/m, 60_000)
    await snapshotter.kill()
    // The keeper holds the mount's connection: the container's lookups wait, none fails (a
    // lookup on a connection that ended prints "tick N error 107", ENOTCONN).
    await new Promise((r) => setTimeout(r, 1_000))
    snapshotter = startProcess(THAW, snapshotterArgs)
    await snapshotter.waitFor(/"msg":"listening"/)
    const ticks = () => [...looper.output().matchAll(/^tick (\d+) (.*)$/gm)]
    const atRestart = ticks().length
    await looper.waitFor(new RegExp(`^tick ${atRestart + 5} missing$`, 'm'), 60_000)
    expect(ticks().filter((t) => t[2] !== 'missing')).toEqual([])
    await containerd
      .ctr(['task', 'kill', '-s', 'SIGKILL', `snap-${process.pid}-loop`])
      .catch(() => {})
    await looper.stop(30_000)
    // containerd's connection to the socket comes back on its own (gRPC reconnect backoff).
    const reference = `${proxy.address}/snap/app:t`
    let output = ''
    for (let attempt = 0; ; attempt++) {
      try {
        output = await runIn(reference, `snap-${process.pid}-again-${attempt}`)
        break
      } catch (err) {
        if (attempt >= 20 || !/Unavailable|connection|transport/i.test(String(err))) throw err
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    expect(output).toBe('hello from layer 2\nmissing /data/gone\n')
  }, 120_000)

  it('removes the snapshots and the lazy mount when the images are removed', async () => {
    // The CRI plugin keeps each image under its tag, its digest and its ID.
    const k8s = { namespace: 'k8s.io' }
    const criImages = (await containerd.ctr(['image', 'ls', '-q'], k8s)).stdout.split('\n')
    for (const ref of criImages.filter(Boolean))
      await containerd.ctr(['image', 'rm', '--sync', ref], k8s)
    for (const ref of [`${proxy.address}/snap/app:t`, `${proxy.address}/snap/plain:t`])
      await ctr(['image', 'rm', '--sync', ref])
    const list = (await ctr(['snapshots', '--snapshotter', 'thaw', 'ls'])).stdout.trim().split('\n')
    expect(list.slice(1)).toEqual([])
    const metadata = JSON.parse(await readFile(join(root, 'metadata.json'), 'utf8'))
    expect(metadata.snapshots).toEqual([])
    const fuse = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(join(root, 'mnt')))
    expect(fuse).toEqual([])
  }, 60_000)
})

/**
 * umoci layout (tag t): layer 1 /bin/show, /data/gone, /data/big (random, so each layout's layers
 * are its own); layer 2 /data/msg with `message`, /data/gone removed.
 */
async function buildLayout(dir: string, message: string): Promise<string> {
  const layout = join(dir, 'layout')
  const bundle = join(dir, 'bundle')
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', `${layout}:t`])
  await run('umoci', ['unpack', '--image', `${layout}:t`, bundle])
  const rootfs = join(bundle, 'rootfs')
  await mkdir(join(rootfs, 'bin'), { recursive: true })
  await mkdir(join(rootfs, 'data'), { recursive: true })
  const source = join(import.meta.dirname, 'fixtures/snapshotter/show.c')
  await run('gcc', ['-static', '-O2', '-o', join(rootfs, 'bin/show'), source])
  await writeFile(join(rootfs, 'data/gone'), 'deleted in layer 2\n')
  await writeFile(join(rootfs, 'data/big'), randomBytes(BIG))
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  await writeFile(join(rootfs, 'data/msg'), `${message}\n`)
  await rm(join(rootfs, 'data/gone'))
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  return layout
}
