import { join } from 'node:path'
import { startContainerd, type BenchContainerd } from '../containerd.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { ctrRunSample, ctrRunWorker } from '../ctr-run-worker.ts'
import { createLink, type BenchLink } from '../link.ts'
import { startEdge, type BenchEdge } from '../thaw/thaw-edge.ts'
import { startBenchSnapshotter, type BenchSnapshotter } from '../thaw/thaw-snapshotter.ts'
import { dropCaches } from '../worker-session.ts'
import { edgeLinkIndex } from './thaw.ts'

export type SnapshotterVariant = 'cold' | 'profile'

const SNAPSHOTTER = 'thaw'

/** The snapshotter's log line for a layer it made lazy (host/snapshotter/snapshotter.ts). */
interface RemoteLayerLog {
  top: boolean
  /** The Prepare's time to the answer, the acquire included. */
  ms: number
  /** Of it: the acquire (resolve, mount, read-ahead), and the folder and metadata written. */
  acquireMs: number
  saveMs: number
  resolveMs: number
  mountMs: number
  prefetchMs: number
  replayed: boolean
  recording: boolean
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
 * - `cold`: the image converted on push, no profile; the snapshotter records each run's start
 *   (the edge has no profile of the image) and uploads it only after the answer: the upload and
 *   the re-layout it asks for are not timed, and each run pushes the image to a new repository
 *   (so no run finds the profile an earlier one left).
 * - `profile`: in prepare, one start through the snapshotter (fresh, as in a run) records the
 *   image's default profile and uploads it, and the edge re-lays the artifact by it; every run's
 *   mount then replays the bundle and records nothing.
 */
export function thawSnapshotterContender(variant: SnapshotterVariant): Contender {
  let ctx: ContenderContext | undefined
  let edge: BenchEdge | undefined
  let edgeLink: BenchLink | undefined
  let image = { repository: '', manifest: '', reference: '' }
  let bytesRead: number | undefined
  let runs = 0

  /** Pushes the image to `repository` (loopback, not timed) and waits for its conversion. */
  const push = async (repository: string) => {
    const manifest = await edge!.push(ctx!.layout, ctx!.image.tag, repository, 'bench')
    await edge!.waitStatus(repository, manifest, (s) => s.state === 'converted', {
      timeoutMs: 30 * 60_000,
    })
    return { repository, manifest, reference: `${edgeLink!.registryAddress}/${repository}:bench` }
  }

  /**
   * A start that records (the edge has no profile of the image): its profile is uploaded once
   * the recording ends, `recordLimitMs` after the container's first file open; then the edge
   * re-lays the artifact by it. Waited for after the answer (not timed), before the snapshotter
   * stops, so it neither is lost nor loads the next run.
   */
  const settleRecording = async (snapshotter: BenchSnapshotter, timeoutMs: number) => {
    await snapshotter.waitFor(/"msg":"profile uploaded"/, timeoutMs)
    await edge!.waitStatus(
      image.repository,
      image.manifest,
      (s) => s.state === 'converted' && !!s.profile,
      { timeoutMs },
    )
  }

  const coldStart = async (signal: AbortSignal): Promise<ColdStartSample> => {
    if (!ctx || !edge || !edgeLink) throw new Error('prepare first')
    const run = runs++
    // No profile: a repository of its own per run, so no run replays what an earlier recorded.
    if (variant === 'cold') image = await push(`thaw-snapshotter-cold-${run}/${ctx.image.name}`)
    const { reference } = image
    let snapshotter: BenchSnapshotter | undefined
    let containerd: BenchContainerd | undefined
    try {
      // Short names: containerd's sockets live under these and unix socket paths are ≤ 104 bytes.
      const edgeUrl = `http://${edgeLink.registryAddress}`
      snapshotter = await startBenchSnapshotter(join(ctx.scratchDir, `s${run}`), edgeLink, edgeUrl)
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
      const recording = layers.some((l) => l.recording)
      const sample = ctrRunSample({
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
          acquirePrefetchMs: first.prefetchMs,
          prepareAcquireMs: first.acquireMs,
          prepareSaveMs: first.saveMs,
          bundleReplayed: first.replayed ? 1 : 0,
          startRecorded: recording ? 1 : 0,
        },
      })
      if (recording && variant === 'profile') await settleRecording(snapshotter, 30 * 60_000)
      // Bounded: a slow upload or re-layout is not the cold row's failure.
      else if (recording) await settleRecording(snapshotter, 300_000).catch(() => {})
      return sample
    } finally {
      // containerd first: removing its images removes the snapshots and the lazy mount.
      await containerd?.close()
      await snapshotter?.close()
    }
  }

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
      if (variant === 'cold') return
      image = await push(`thaw-snapshotter-profile/${context.image.name}`)
      // One start through the snapshotter, as a run makes it, records the image's start (the
      // edge has no profile of it yet) and uploads it as the image's default profile.
      context.log(`${image.repository}: recording start through the snapshotter`)
      await coldStart(AbortSignal.timeout(60 * 60_000))
      bytesRead = await edge.profileBytesRead(image.repository, image.manifest)
    },
    coldStart,
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
  cold: 'containerd 1.6 + thaw snapshotter + thaw edge: ctr-remote image rpull (layers answered "already exists" over one lazy FUSE mount) then ctr run; a fresh snapshotter (caches empty) and page cache dropped before each start; no prefetch profile (the start is recorded, and uploaded after the answer)',
  profile:
    "as snapshotter-cold, after one start through the snapshotter recorded the image's profile: the mount replays the prefetch bundle",
}
