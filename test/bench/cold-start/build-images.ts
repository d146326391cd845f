import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cacheKey } from '../../../host/build/base-image.ts'
import { buildDebianBase } from '../../../host/build/debian-base.ts'
import { buildNodeBase } from '../../../host/build/node-base.ts'
import { runCommand } from '../../../host/os/run-command.ts'
import { DEFAULT_PATH } from '../../../host/sandbox/node-process.ts'
import { describeStep, LARGE_IMAGE_STEPS, type ImageStep } from './image-steps.ts'

// Bump when what is built changes in a way the inputs below do not show.
const BUILDER_VERSION = 1
const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../../..')
const APP_DIR = join(HERE, 'app')
/** The app's packages, copied from the repository's node_modules (no network). */
const APP_PACKAGES = ['@azure/functions', '@azure/functions-extensions-base', 'cookie']

export type ImageName = 'multi' | 'single' | 'small'

export interface BenchImage {
  name: ImageName
  /** Tag in the OCI layout (`<layout>:<tag>`). */
  tag: string
  layers: number
  /** Sum of the compressed layer blobs (what a full pull transfers). */
  compressedBytes: number
  /** Bytes of the unpacked root filesystem (`du -sb`). */
  unpackedBytes: number
  /** The unpacked root filesystem: the locally cached contender's image. */
  rootfs: string
  description: string
}

export interface BenchImages {
  /** OCI image layout holding every image. */
  layout: string
  /** Hash of every input; images are pushed under this tag so a registry never mixes builds. */
  key: string
  images: BenchImage[]
}

export interface BuildOptions {
  cacheDir: string
  /** `large` = multi + single (~1 GB, minutes to build the first time); `small` = small. */
  sets: ('large' | 'small')[]
  log: (line: string) => void
  signal?: AbortSignal
}

/**
 * Builds the benchmark's images into one OCI layout under `<cacheDir>/bench-images/<key>/`, with
 * umoci (one `repack` per step gives one layer per step, as a Dockerfile build does), and keeps
 * each image's unpacked root filesystem. A set already built with the same inputs is reused.
 */
export async function buildBenchImages(options: BuildOptions): Promise<BenchImages> {
  const key = cacheKey({ BUILDER_VERSION, LARGE_IMAGE_STEPS, app: await appFiles() })
  const dir = join(options.cacheDir, 'bench-images', key.slice(0, 12))
  const layout = join(dir, 'layout')
  await mkdir(dir, { recursive: true })
  const images: BenchImage[] = []
  for (const set of options.sets) {
    const record = join(dir, `${set}.json`)
    const cached = await readFile(record, 'utf8').catch(() => undefined)
    if (cached) {
      images.push(...(JSON.parse(cached) as BenchImage[]))
      continue
    }
    options.log(`building the ${set} image set in ${dir} (cached afterwards)`)
    const built =
      set === 'large'
        ? await buildLarge(dir, layout, options)
        : await buildSmall(dir, layout, options)
    await writeFile(record, `${JSON.stringify(built, null, 2)}\n`)
    images.push(...built)
  }
  return { layout, key: key.slice(0, 12), images }
}

async function buildLarge(dir: string, layout: string, o: BuildOptions): Promise<BenchImage[]> {
  const base = await buildDebianBase({ cacheDir: o.cacheDir, signal: o.signal })
  const bundle = join(dir, 'bundle-multi')
  await startImage(layout, 'multi', bundle)
  const rootfs = join(bundle, 'rootfs')
  let n = 0
  for (const step of LARGE_IMAGE_STEPS) {
    const t0 = performance.now()
    await applyStep(step, rootfs, base.rootfs, o.signal)
    await umoci(
      ['repack', '--refresh-bundle', '--history.created_by', describeStep(step)],
      layout,
      'multi',
      bundle,
    )
    o.log(
      `  layer ${++n}/${LARGE_IMAGE_STEPS.length}: ${describeStep(step)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    )
  }
  await configure(layout, 'multi')
  const single = join(dir, 'bundle-single')
  await startImage(layout, 'single', single)
  await runCommand('cp', ['-a', `${rootfs}/.`, join(single, 'rootfs')])
  await umoci(
    ['repack', '--history.created_by', 'the same tree as multi, in one layer'],
    layout,
    'single',
    single,
  )
  await configure(layout, 'single')
  await umoci(['gc'], layout)
  await rm(single, { recursive: true, force: true })
  const what = `Debian bookworm with nodejs, python3 and ${LARGE_IMAGE_STEPS.length - 6} more install steps; the function app`
  return [
    await describeImage(layout, 'multi', rootfs, `${what}; one layer per step`),
    await describeImage(layout, 'single', rootfs, `${what}; the same tree in one layer`),
  ]
}

async function buildSmall(dir: string, layout: string, o: BuildOptions): Promise<BenchImage[]> {
  const base = await buildNodeBase({ outDir: join(o.cacheDir, 'bench-node-base'), gzip: false })
  const bundle = join(dir, 'bundle-small')
  await startImage(layout, 'small', bundle)
  const rootfs = join(bundle, 'rootfs')
  const steps: ImageStep[] = [{ kind: 'base' }, { kind: 'app-deps' }, { kind: 'app' }]
  for (const step of steps) {
    await applyStep(step, rootfs, base.rootfs, o.signal)
    await umoci(
      ['repack', '--refresh-bundle', '--history.created_by', describeStep(step)],
      layout,
      'small',
      bundle,
    )
  }
  await configure(layout, 'small')
  return [await describeImage(layout, 'small', rootfs, `${base.description}; the function app`)]
}

async function startImage(layout: string, tag: string, bundle: string): Promise<void> {
  await rm(bundle, { recursive: true, force: true })
  const exists = await readFile(join(layout, 'index.json')).catch(() => undefined)
  if (!exists) await runCommand('umoci', ['init', '--layout', layout])
  await umoci(['new'], layout, tag)
  await umoci(['unpack'], layout, tag, bundle)
}

function umoci(args: string[], layout: string, tag?: string, bundle?: string) {
  const image = tag === undefined ? ['--layout', layout] : ['--image', `${layout}:${tag}`]
  return runCommand('umoci', [...args, ...image, ...(bundle ? [bundle] : [])], {
    timeoutMs: 30 * 60_000,
  })
}

/** The worker is the host's (mounted at /.thaw/worker); the image brings node and the app. */
async function configure(layout: string, tag: string): Promise<void> {
  await umoci(
    [
      'config',
      '--config.env',
      `PATH=${DEFAULT_PATH}`,
      '--config.env',
      'AzureWebJobsScriptRoot=/app',
      '--config.workingdir',
      '/app',
      '--config.cmd',
      'node',
      '--config.cmd',
      '/.thaw/worker/worker.mjs',
    ],
    layout,
    tag,
  )
}

async function applyStep(step: ImageStep, rootfs: string, base: string, signal?: AbortSignal) {
  switch (step.kind) {
    case 'base':
      return runCommand('cp', ['-a', `${base}/.`, `${rootfs}/`], { signal })
    case 'apt':
      return inChroot(
        rootfs,
        `apt-get update -qq && apt-get install -y -qq --no-install-recommends ${step.packages.join(' ')} >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache`,
        signal,
      )
    case 'sh':
      return inChroot(rootfs, step.script, signal)
    case 'app-deps':
      for (const name of APP_PACKAGES) {
        await cp(join(ROOT, 'node_modules', name), join(rootfs, 'app/node_modules', name), {
          recursive: true,
        })
      }
      return
    case 'app':
      await cp(APP_DIR, join(rootfs, 'app'), { recursive: true })
  }
}

/** apt needs /proc and DNS; /etc/resolv.conf is emptied again so no host detail lands in a layer. */
async function inChroot(rootfs: string, script: string, signal?: AbortSignal): Promise<void> {
  const proc = join(rootfs, 'proc')
  await mkdir(proc, { recursive: true })
  await runCommand('mount', ['-t', 'proc', 'proc', proc])
  const resolvConf = join(rootfs, 'etc/resolv.conf')
  const before = await readFile(resolvConf).catch(() => undefined)
  await cp('/etc/resolv.conf', resolvConf, { dereference: true })
  try {
    await runCommand('chroot', [rootfs, '/bin/sh', '-c', script], {
      env: { PATH: DEFAULT_PATH, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
      timeoutMs: 30 * 60_000,
      signal,
    })
  } finally {
    await writeFile(resolvConf, before ?? '')
    await runCommand('umount', [proc])
  }
}

async function describeImage(layout: string, tag: string, rootfs: string, description: string) {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[]
  }
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag,
  )
  if (!entry) throw new Error(`no ${tag} in ${layout}`)
  const manifest = JSON.parse(await readFile(blobPath(layout, entry.digest), 'utf8')) as {
    layers: { size: number }[]
  }
  const du = await runCommand('du', ['-sb', '--exclude=./proc', rootfs])
  return {
    name: tag as ImageName,
    tag,
    layers: manifest.layers.length,
    compressedBytes: manifest.layers.reduce((sum, l) => sum + l.size, 0),
    unpackedBytes: Number(du.stdout.split('\t')[0]),
    rootfs,
    description,
  }
}

function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':')
  return join(layout, 'blobs', alg!, hex!)
}

/** The app's files and their contents: a change rebuilds the images. */
async function appFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else out[path.slice(APP_DIR.length)] = await readFile(path, 'utf8')
    }
  }
  await walk(APP_DIR)
  for (const name of APP_PACKAGES) {
    const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'))
    out[`node_modules/${name}`] = String(pkg.version)
  }
  return out
}
