import { chmod, copyFile, mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { bundleWorker } from '../../../runtime/worker/bundle.ts'
import { buildBenchImages, type BenchImage, type BenchImages } from './build-images.ts'
import { calibrateLink } from './calibrate-link.ts'
import type { Contender } from './contender.ts'
import { allContenders, pendingContenders } from './contenders/index.ts'
import { createLink, LINKS, removeStaleLinks } from './link.ts'
import { machineFacts } from './machine.ts'
import type { BenchOptions } from './options.ts'
import { startRegistry, type BenchRegistry } from './registry.ts'
import { summarize, type BenchResults, type LinkResult, type SampleRecord } from './results.ts'

export interface RunContext {
  options: BenchOptions
  command: string
  log: (line: string) => void
  signal: AbortSignal
  /** The results so far, after each link and image (a long run that is cut keeps what it did). */
  onProgress?: (partial: BenchResults) => Promise<void>
}

/**
 * The whole benchmark: images (built or cached), the registry with the images pushed, then per
 * link and image every contender's cold starts, interleaved run by run. Everything it starts
 * (registry, namespaces, proxies, containerd, sandboxes) is stopped in `finally`.
 */
export async function runBench(ctx: RunContext): Promise<BenchResults> {
  const { options, log } = ctx
  const started = Date.now()
  const contenders = pickContenders(options)
  const stale = await removeStaleLinks()
  if (stale.length) log(`removed namespaces of dead benchmark runs: ${stale.join(', ')}`)
  const sets = [
    ...(options.images.some((i) => i !== 'small') ? (['large'] as const) : []),
    ...(options.images.includes('small') ? (['small'] as const) : []),
  ]
  const built = await buildBenchImages({
    cacheDir: options.cacheDir,
    sets,
    log,
    signal: ctx.signal,
  })
  const images = options.images.map((name) => built.images.find((i) => i.name === name)!)
  const runDir = join('/var/tmp', `thaw-bench-run-${process.pid}`)
  await mkdir(runDir, { recursive: true })
  const workerDir = join(runDir, 'worker')
  await mkdir(workerDir, { recursive: true })
  await chmod(workerDir, 0o755)
  await copyFile(
    await bundleWorker({ cacheDir: join(options.cacheDir, 'bench-worker') }),
    join(workerDir, 'worker.mjs'),
  )
  await chmod(workerDir + '/worker.mjs', 0o644)
  const registry = await startRegistry(options.cacheDir, runDir)
  const samples: SampleRecord[] = []
  const links: LinkResult[] = []
  const machine = await machineFacts()
  const results = (): BenchResults => ({
    schema: 1,
    command: ctx.command,
    mode: options.mode,
    date: new Date(started).toISOString(),
    durationS: (Date.now() - started) / 1000,
    machine,
    images: images.map(({ name, layers, compressedBytes, unpackedBytes, description }) => ({
      name,
      layers,
      compressedBytes,
      unpackedBytes,
      description,
    })),
    links,
    contenders: contenders.map(({ id, label, description, offline }) => ({
      id,
      label,
      description,
      offline,
    })),
    pending: pendingContenders(
      contenders.some((c) => c.id.startsWith('thaw-')),
      options.images,
    ),
    samples,
    summary: summarize(samples),
  })
  try {
    for (const image of images) {
      const pushed = await registry.push(built.layout, image.tag, `bench/${image.name}`, built.key)
      log(`${pushed ? 'pushed' : 'already in the registry:'} bench/${image.name}:${built.key}`)
    }
    for (const [n, name] of options.links.entries()) {
      ctx.signal.throwIfAborted()
      const link = await createLink(LINKS[name], registry.port, n)
      try {
        const blob = await largestBlob(registry, images, built.key)
        const calibration = await calibrateLink(link, registry.address, blob)
        log(`link ${name}: ${JSON.stringify(calibration)}`)
        links.push({ ...LINKS[name], calibration })
        for (const image of images) {
          const here = contenders.filter((c) => c.appliesTo(image) && (!c.offline || n === 0))
          const ctxFor = (c: Contender) => ({
            image,
            layout: built.layout,
            reference: `${link.registryAddress}/bench/${image.name}:${built.key}`,
            registry,
            link,
            workerDir,
            cacheDir: options.cacheDir,
            scratchDir: join(runDir, `${name}-${image.name}-${c.id}`),
            log,
          })
          await runInterleaved(here, ctxFor, { link: name, image: image.name }, samples, ctx)
          await ctx.onProgress?.(results())
        }
      } finally {
        await link.close()
      }
    }
  } finally {
    await registry.close()
    await rm(runDir, { recursive: true, force: true })
  }
  return results()
}

function pickContenders(options: BenchOptions): Contender[] {
  const all = allContenders()
  if (!options.contenders) return all
  const unknown = options.contenders.filter((id) => !all.some((c) => c.id === id))
  if (unknown.length)
    throw new Error(
      `unknown contenders: ${unknown.join(', ')} (thaw-cold and thaw-profile need THAW_BENCH_THAW=1)`,
    )
  return all.filter((c) => options.contenders!.includes(c.id))
}

/** Prepare all, then run i of every contender before run i+1 of any (order rotated per run). */
async function runInterleaved(
  contenders: Contender[],
  ctxFor: (c: Contender) => Parameters<Contender['prepare']>[0],
  where: { link: string; image: string },
  samples: SampleRecord[],
  ctx: RunContext,
): Promise<void> {
  const ready: Contender[] = []
  try {
    for (const c of contenders) {
      try {
        const context = ctxFor(c)
        await mkdir(context.scratchDir, { recursive: true })
        await c.prepare(context)
        ready.push(c)
      } catch (err) {
        ctx.log(`${where.link} ${where.image} ${c.id}: prepare failed: ${(err as Error).stack}`)
        samples.push({
          ...where,
          contender: c.id,
          run: 0,
          error: `prepare: ${(err as Error).message}`,
        })
        await c.cleanup().catch(() => {})
      }
    }
    for (let run = 0; run < ctx.options.runs; run++) {
      const order = ready.map((_, i) => ready[(i + run) % ready.length]!)
      for (const c of order) {
        ctx.signal.throwIfAborted()
        try {
          const sample = await c.coldStart(ctx.signal)
          samples.push({ ...where, contender: c.id, run, ...sample })
          ctx.log(describeSample(where, c.id, run, sample))
        } catch (err) {
          if (ctx.signal.aborted) throw err
          ctx.log(`${where.link} ${where.image} ${c.id} run ${run}: FAILED ${(err as Error).stack}`)
          samples.push({ ...where, contender: c.id, run, error: (err as Error).message })
        }
      }
    }
  } finally {
    for (const c of ready) await c.cleanup().catch((err) => ctx.log(`${c.id} cleanup: ${err}`))
  }
}

function describeSample(
  where: { link: string; image: string },
  id: string,
  run: number,
  s: {
    ttfbMs: number
    bytesFetched: number
    requests: number
    status: number
    phases: Record<string, number>
  },
): string {
  const phases = Object.entries(s.phases)
    .map(([k, v]) => `${k} ${(v / 1000).toFixed(3)}`)
    .join(', ')
  return `${where.link} ${where.image} ${id} run ${run}: ${(s.ttfbMs / 1000).toFixed(3)} s (HTTP ${s.status}), ${(s.bytesFetched / 1e6).toFixed(1)} MB in ${s.requests} requests; ${phases}`
}

/** `/v2/<repo>/blobs/<digest>` of the largest layer of the first image (for link calibration). */
async function largestBlob(
  registry: BenchRegistry,
  images: BenchImage[],
  key: string,
): Promise<string> {
  const repo = `bench/${images[0]!.name}`
  const res = await fetch(`http://${registry.address}/v2/${repo}/manifests/${key}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  })
  const manifest = (await res.json()) as { layers: { digest: string; size: number }[] }
  const layer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]!
  return `/v2/${repo}/blobs/${layer.digest}`
}

export type { BenchImages }
