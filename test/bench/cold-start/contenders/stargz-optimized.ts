import { join } from 'node:path'
import { startContainerd, type BenchContainerd } from '../containerd.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { ctrRunSample, ctrRunWorker } from '../ctr-run-worker.ts'
import { OPTIMIZE_VERSION, optimizeImage, type OptimizedImage } from '../stargz/optimize-image.ts'
import { buildStargzDaemon, startStargzDaemon, type StargzDaemon } from '../stargz/stargz-daemon.ts'
import { dropCaches } from '../worker-session.ts'

const SNAPSHOTTER = 'stargz'

/**
 * The lazy-pulling peer: stargz-snapshotter (Debian's library 0.12, served by our own small
 * daemon, stargz/main.go) with the image converted to eStargz by `ctr-remote image optimize`
 * running the benchmark's own function, so the files its start reads come first and are
 * prefetched. Per start: a fresh daemon (empty caches) and a fresh containerd with it as a proxy
 * snapshotter, both on the client side of the link; page cache dropped; then, timed from the
 * start of the pull as the full-pull row is, `ctr-remote image rpull` (manifest and config, one
 * lazy FUSE mount per layer) and the same `ctr run` as the full-pull row, on that snapshotter.
 */
export function stargzOptimizedContender(): Contender {
  let ctx: ContenderContext | undefined
  let daemonBinary: string | undefined
  let image: OptimizedImage | undefined
  let runs = 0
  return {
    id: 'stargz-optimized',
    label: 'stargz-snapshotter, optimized eStargz',
    description:
      'stargz-snapshotter 0.12 (Debian library, own daemon) + containerd 1.6: the image optimized to eStargz by ctr-remote running the same function; ctr-remote image rpull (lazy FUSE layers, prefetch of the recorded files) then ctr run; a fresh snapshotter (caches empty) and page cache dropped before each start',
    offline: false,
    appliesTo: () => true,
    async prepare(context) {
      ctx = context
      daemonBinary = await buildStargzDaemon(context.cacheDir)
      const [repository, sourceTag] = splitReference(context.reference)
      image = await optimizeImage({
        registry: context.registry,
        repository,
        layout: context.layout,
        layoutTag: context.image.tag,
        rootfs: context.image.rootfs,
        sourceTag,
        targetTag: `${sourceTag}-esgz-opt${OPTIMIZE_VERSION}`,
        workerDir: context.workerDir,
        scratchDir: context.scratchDir,
        recordDir: join(context.cacheDir, 'stargz-optimize'),
        log: context.log,
        signal: AbortSignal.timeout(2 * 60 * 60_000),
      })
      context.log(
        `stargz: ${repository}:${image.tag} ${image.made ? `made in ${image.seconds.toFixed(0)} s` : 'from an earlier run'}: ${image.estargzLayers}/${image.layers} eStargz layers, ${(image.compressedBytes / 1e6).toFixed(1)} MB${image.recordedPaths === undefined ? '' : `, ${image.recordedPaths} paths recorded`}`,
      )
      if (image.estargzLayers !== image.layers)
        throw new Error(`${repository}:${image.tag} has layers that are not eStargz`)
    },
    async coldStart(signal): Promise<ColdStartSample> {
      if (!ctx || !daemonBinary || !image) throw new Error('prepare first')
      const run = runs++
      const reference = `${ctx.link.registryAddress}/${image.repository}:${image.tag}`
      let daemon: StargzDaemon | undefined
      let containerd: BenchContainerd | undefined
      try {
        // Short names: containerd's sockets live under these and unix socket paths are ≤ 104 bytes.
        daemon = await startStargzDaemon(daemonBinary, join(ctx.scratchDir, `s${run}`), ctx.link)
        containerd = await startContainerd(join(ctx.scratchDir, `c${run}`), ctx.link, {
          proxySnapshotters: { [SNAPSHOTTER]: daemon.socket },
        })
        await dropCaches()
        const before = await ctx.registry.counters()
        const cpu0 = await ctx.link.proxyCpuMs()
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
          id: `bench-${process.pid}-sgz-${run}`,
          snapshotter: SNAPSHOTTER,
          signal,
        })
        const after = await ctx.registry.counters()
        return ctrRunSample({
          t0,
          t1,
          pullPhase: 'rpull (manifest, config, lazy layer mounts)',
          times,
          before,
          after,
          extra: {
            delayProxyCpuMs: (await ctx.link.proxyCpuMs()) - cpu0,
            estargzImageBytes: image.compressedBytes,
          },
        })
      } finally {
        // containerd first: removing its images removes the snapshots through the daemon.
        await containerd?.close()
        await daemon?.close()
      }
    },
    async cleanup() {
      ctx = undefined
    },
  }
}

/** `host:port/bench/small:tag` → [`bench/small`, `tag`]. */
function splitReference(reference: string): [string, string] {
  const slash = reference.indexOf('/')
  const colon = reference.lastIndexOf(':')
  if (slash < 0 || colon < slash) throw new Error(`not host/repository:tag: ${reference}`)
  return [reference.slice(slash + 1, colon), reference.slice(colon + 1)]
}
