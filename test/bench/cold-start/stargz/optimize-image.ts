import { chmod, mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { startContainerd } from '../containerd.ts'
import { workerMounts } from '../ctr-run-worker.ts'
import { createLink, LINKS } from '../link.ts'
import type { BenchRegistry } from '../registry.ts'
import { listenWorker, requestHello, WORKER_ENV } from '../worker-session.ts'
import { withParentDirs } from './with-parent-dirs.ts'

/** Bump when the way the optimized image is made changes: it is kept in the registry by tag. */
export const OPTIMIZE_VERSION = 2

export interface OptimizedImage {
  /** `bench/<name>:<tag>` in the bench registry. */
  repository: string
  tag: string
  layers: number
  /** Sum of the eStargz layer blobs. */
  compressedBytes: number
  /** Layers that carry a TOC digest annotation (lazily mountable). */
  estargzLayers: number
  /** Made now (false: found in the registry from an earlier run). */
  made: boolean
  seconds: number
  /** Paths ctr-remote's fanotify recorded while the function started (undefined when reused). */
  recordedPaths?: number
}

/**
 * `ctr-remote image optimize` of `<repository>:<sourceTag>` into `<repository>:<targetTag>`, pushed
 * to the bench registry, unless the registry has it already. The optimizer runs the image's own
 * command (`node /.thaw/worker/worker.mjs`, the worker bind-mounted as in every other row) under
 * fanotify, so the files the
 * start reads go first in each eStargz layer, ahead of the prefetch landmark. The workload is the
 * benchmark's: the worker starts, loads the app, answers `GET /api/hello`, and is then shut down
 * through its control socket, which ends the recording (`--wait-on-signal` keeps a fixed period
 * from cutting a slow start short). Runs on a private containerd on the host's loopback.
 */
export async function optimizeImage(o: {
  registry: BenchRegistry
  repository: string
  /** The image as built: OCI layout, its tag there, its unpacked root filesystem. */
  layout: string
  layoutTag: string
  rootfs: string
  /** Its tag in the registry (`repository:sourceTag`). */
  sourceTag: string
  targetTag: string
  workerDir: string
  scratchDir: string
  recordDir: string
  log: (line: string) => void
  signal: AbortSignal
}): Promise<OptimizedImage> {
  const t0 = performance.now()
  const target = `${o.registry.address}/${o.repository}:${o.targetTag}`
  const done = async (made: boolean, recordedPaths?: number): Promise<OptimizedImage> => ({
    repository: o.repository,
    tag: o.targetTag,
    ...(await describe(o.registry, o.repository, o.targetTag)),
    made,
    seconds: (performance.now() - t0) / 1000,
    recordedPaths,
  })
  if (await o.registry.hasManifest(o.repository, o.targetTag)) return done(false)
  const source = `${o.registry.address}/${o.repository}:${await withParents(o)}`
  o.log(`stargz: ctr-remote image optimize ${source} → ${o.targetTag} (kept in the registry)`)
  const link = await createLink(LINKS.loopback, o.registry.port, 0)
  const containerd = await startContainerd(join(o.scratchDir, 'oc'), link)
  const runDir = join(o.scratchDir, 'or')
  await mkdir(runDir, { recursive: true })
  await chmod(runDir, 0o777)
  await mkdir(o.recordDir, { recursive: true })
  const record = join(o.recordDir, `${o.repository.replace(/\//g, '_')}-${o.targetTag}.record`)
  try {
    await containerd.ctr(['image', 'pull', '--plain-http', source], {
      signal: o.signal,
      timeoutMs: 30 * 60_000,
    })
    const session = await listenWorker(runDir)
    const optimize = containerd.spawnCtr(
      [
        'image',
        'optimize',
        '--oci',
        '--wait-on-signal',
        '--record-out',
        record,
        ...workerMounts(runDir, o.workerDir).flatMap((m) => ['--mount', m]),
        ...Object.entries(WORKER_ENV).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
        source,
        target,
      ],
      'ctr-remote',
    )
    try {
      const failed = optimize.exited.then((code) => {
        throw new Error(`ctr-remote exited (${code}) before the function answered`)
      })
      failed.catch(() => {})
      await Promise.race([session.ready, failed])
      const answer = await requestHello(join(runDir, 'worker.sock'), o.signal)
      if (answer.status !== 200) throw new Error(`the function answered ${answer.status}`)
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${optimize.output().slice(-3000)}`)
    } finally {
      // The worker exits on shutdown; the container's exit ends the recording and the
      // conversion starts (minutes for the large images: gzip level 9 on one core per layer).
      await session.close()
    }
    const code = await withTimeout(optimize.exited, 60 * 60_000, () => optimize.stop())
    if (code !== 0)
      throw new Error(
        `ctr-remote image optimize failed (${code}): ${optimize.output().slice(-3000)}`,
      )
    await containerd.ctr(['image', 'push', '--plain-http', target], {
      signal: o.signal,
      timeoutMs: 30 * 60_000,
    })
    const recordedPaths = (await readFile(record, 'utf8')).split('\n').filter(Boolean).length
    return await done(true, recordedPaths)
  } finally {
    await containerd.close()
    await link.close()
    await rm(runDir, { recursive: true, force: true })
  }
}

/** The tag to optimize from: the image itself, or its copy with the parent directories it lacked. */
async function withParents(o: {
  registry: BenchRegistry
  repository: string
  layout: string
  layoutTag: string
  rootfs: string
  sourceTag: string
  scratchDir: string
  log: (line: string) => void
}): Promise<string> {
  const outDir = join(o.scratchDir, 'parents')
  try {
    const added = await withParentDirs({
      layout: o.layout,
      tag: o.layoutTag,
      rootfs: o.rootfs,
      outDir,
    })
    if (added.addedDirs === 0) return o.sourceTag
    const tag = `${o.sourceTag}-parents`
    await o.registry.push(outDir, o.layoutTag, o.repository, tag)
    o.log(
      `stargz: ${o.repository}:${tag}: ${added.addedDirs} parent directory entries added to ${added.rewrittenLayers} layers (umoci leaves them out; ctr-remote 0.12 needs them)`,
    )
    return tag
  } finally {
    await rm(outDir, { recursive: true, force: true })
  }
}

async function describe(registry: BenchRegistry, repository: string, tag: string) {
  const manifest = (await registry.manifest(repository, tag)) as {
    layers: { size: number; annotations?: Record<string, string> }[]
  }
  return {
    layers: manifest.layers.length,
    compressedBytes: manifest.layers.reduce((sum, l) => sum + l.size, 0),
    estargzLayers: manifest.layers.filter(
      (l) => l.annotations?.['containerd.io/snapshot/stargz/toc.digest'] !== undefined,
    ).length,
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Promise<void>) {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void onTimeout()
      reject(new Error(`timed out after ${ms} ms`))
    }, ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}
