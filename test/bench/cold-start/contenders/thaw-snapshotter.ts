import { join } from 'node:path'
import { startContainerd, type BenchContainerd } from '../containerd.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { ctrRunSample, ctrRunWorker } from '../ctr-run-worker.ts'
import { createLink, type BenchLink } from '../link.ts'
import { startEdge, type BenchEdge } from '../thaw/thaw-edge.ts'
import { expectOk, startBenchHost } from '../thaw/thaw-host.ts'
import { startBenchSnapshotter, type BenchSnapshotter } from '../thaw/thaw-snapshotter.ts'
import { dropCaches } from '../worker-session.ts'
import { edgeLinkIndex, recordProfile } from './thaw.ts'

export type SnapshotterVariant = 'cold' | 'profile'

const SNAPSHOTTER = 'thaw'

/** The snapshotter's log line for a layer it made lazy (host/snapshotter/snapshotter.ts). */
interface RemoteLayerLog {
  top: boolean
  /** The Prepare's time to the answer, the acquire included. */
  ms: number
  resolveMs: number
  mountMs: number
  replayed: boolean
}

/**
 * The Kubernetes node's way to a thaw image: containerd 1.6 with `thaw snapshotter` as its proxy
 * snapshotter, pulling from `thaw edge` (origin mode, on loopback, behind its own emulated link
 * as in thaw's host rows). Per start, as the stargz row: a fresh snapshotter (empty frame cache,
 * nothing mounted) and a fresh containerd, both on the client side of the link; page cache
 * dropped; then, timed from the start of the pull as the full-pull row is, `ctr-remote image
 * rpull --snapshotter thaw` (manifest and config; the layers are answered "already exists" over
 * one lazy FUSE mount of the image) and the same `ctr run` of the worker as the other containerd
 * rows. Bytes and requests are what the edge served between t0 and the answer.
 *
 * - `cold`: the image converted on push, no profile (the snapshotter records none).
 * - `profile`: in prepare, one start of the same image by `thaw host` records the app's profile,
 *   which is uploaded again as the image's default (the snapshotter's pulls name no workload),
 *   and the edge re-lays the artifact by it; every run's mount then replays the default bundle.
 */
export function thawSnapshotterContender(variant: SnapshotterVariant): Contender {
  let ctx: ContenderContext | undefined
  let edge: BenchEdge | undefined
  let edgeLink: BenchLink | undefined
  let reference = ''
  let bytesRead: number | undefined
  let runs = 0
  return {
    id: `snapshotter-${variant}`,
    label: LABELS[variant],
    description: DESCRIPTIONS[variant],
    offline: false,
    appliesTo: () => true,
    async prepare(context) {
      ctx = context
      edge = await startEdge(join(context.scratchDir, 'edge-store'))
      edgeLink = await createLink(context.link.spec, edge.port, edgeLinkIndex())
      const repository = `thaw-snapshotter-${variant}/${context.image.name}`
      reference = `${edgeLink.registryAddress}/${repository}:bench`
      if (variant === 'cold') {
        const manifest = await edge.push(context.layout, context.image.tag, repository, 'bench')
        await edge.waitStatus(repository, manifest, (s) => s.state === 'converted', {
          timeoutMs: 30 * 60_000,
        })
        return
      }
      const host = await startBenchHost({
        link: edgeLink,
        edgeUrl: `http://${edgeLink.registryAddress}`,
        stateDir: join(context.scratchDir, 'h'),
        pool: 1,
      })
      try {
        const app = `bench-${context.image.name}-snapshotter`
        const recorded = await recordProfile(context, edge, host, edgeLink, repository, app)
        bytesRead = recorded.bytesRead
        expectOk('drain', await host.admin('POST', `/admin/apps/${app}/drain`))
        // The host recorded the app's profile; containerd's pulls name no workload, so the
        // snapshotter asks for the image's default bundle: the same profile, uploaded as that.
        await edge.copyProfileToDefault(repository, recorded.manifest, app)
      } catch (err) {
        throw new Error(`${(err as Error).message}\nthaw host: ${host.child.output().slice(-3000)}`)
      } finally {
        await host.close()
      }
    },
    async coldStart(signal): Promise<ColdStartSample> {
      if (!ctx || !edge || !edgeLink) throw new Error('prepare first')
      const run = runs++
      let snapshotter: BenchSnapshotter | undefined
      let containerd: BenchContainerd | undefined
      try {
        // Short names: containerd's sockets live under these and unix socket paths are ≤ 104 bytes.
        const edgeUrl = `http://${edgeLink.registryAddress}`
        snapshotter = await startBenchSnapshotter(
          join(ctx.scratchDir, `s${run}`),
          edgeLink,
          edgeUrl,
        )
        containerd = await startContainerd(join(ctx.scratchDir, `c${run}`), edgeLink, {
          proxySnapshotters: { [SNAPSHOTTER]: snapshotter.socket },
        })
        await dropCaches()
        const before = await edge.counters()
        const cpu0 = await edgeLink.proxyCpuMs()
        const t0 = performance.now()
        await containerd.ctrRemote(
          ['image', 'rpull', '--plain-http', '--snapshotter', SNAPSHOTTER, reference],
          { signal, timeoutMs: 600_000 },
        )
        const t1 = performance.now()
        const times = await ctrRunWorker(containerd, {
          reference,
          workerDir: ctx.workerDir,
          runDir: join(ctx.scratchDir, `run-${run}`),
          id: `bench-${process.pid}-thawsn-${run}`,
          snapshotter: SNAPSHOTTER,
          signal,
        })
        const after = await edge.counters()
        const layers = snapshotter
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"remote layer"'))
          .map((l) => JSON.parse(l) as RemoteLayerLog)
        if (!layers.some((l) => l.top))
          throw new Error(`no layer was mounted lazily: ${snapshotter.output().slice(-2000)}`)
        // The first layer's Prepare mounts the image; the others share the mount (timings 0).
        const first = layers[0]!
        return ctrRunSample({
          t0,
          t1,
          pullPhase: 'rpull (manifest, config, lazy mount of the image)',
          times,
          before,
          after,
          extra: {
            delayProxyCpuMs: (await edgeLink.proxyCpuMs()) - cpu0,
            ...(bytesRead === undefined ? {} : { bytesReadByFunction: bytesRead }),
            // The lazy mount's acquire, inside the rpull (ms), and whether it replayed a bundle.
            acquireMs: first.ms,
            acquireResolveMs: first.resolveMs,
            acquireMountMs: first.mountMs,
            bundleReplayed: first.replayed ? 1 : 0,
          },
        })
      } finally {
        // containerd first: removing its images removes the snapshots and the lazy mount.
        await containerd?.close()
        await snapshotter?.close()
      }
    },
    async cleanup() {
      await edgeLink?.close()
      await edge?.close()
      edgeLink = edge = undefined
    },
  }
}

const LABELS: Record<SnapshotterVariant, string> = {
  cold: 'containerd + thaw snapshotter, no profile',
  profile: 'containerd + thaw snapshotter, with profile',
}
const DESCRIPTIONS: Record<SnapshotterVariant, string> = {
  cold: 'containerd 1.6 + thaw snapshotter + thaw edge: ctr-remote image rpull (layers answered "already exists" over one lazy FUSE mount) then ctr run; a fresh snapshotter (caches empty) and page cache dropped before each start; no prefetch profile',
  profile:
    'as snapshotter-cold, after one start recorded by thaw host: the mount replays the prefetch bundle',
}
