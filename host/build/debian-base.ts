import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { runCommand } from '../os/run-command.ts'
import { DEFAULT_PATH } from '../sandbox/node-process.ts'
import { APP_USER } from './base-etc.ts'
import {
  cacheKey,
  ociArchitecture,
  readCachedBase,
  writeBaseRecord,
  type BaseImage,
} from './base-image.ts'
import { writeLayerTar } from './layer-tar.ts'

// Bump when the steps below change, so cached builds are redone.
const BUILDER_VERSION = 1

export const DEFAULT_CACHE_DIR = '/var/tmp/thaw-cache'

export interface DebianBaseOptions {
  /** Default: `<cacheDir>/debian-<suite>-<key>`. */
  outDir?: string
  /** Downloaded .debs (`debootstrap --cache-dir`) and default outputs. Default /var/tmp/thaw-cache. */
  cacheDir?: string
  mirror?: string
  suite?: string
  /** Installed on top of minbase, with their dependencies. */
  packages?: string[]
  /**
   * A finished `debootstrap --variant=minbase <suite>` tree to start from instead of running
   * debootstrap (test/support/debian-rootfs.ts caches one): it is copied and `packages` are
   * installed into the copy by apt-get in a chroot, from `mirror`.
   */
  minbase?: string
  /**
   * Leave out what debian:bookworm-slim leaves out (documentation but the licences, manuals,
   * info pages, translations), also for packages installed later in the image. Default false.
   */
  slim?: boolean
  gzip?: boolean
  /**
   * Layer mtimes are clamped to this (seconds): package files keep their own older mtimes (so
   * Python's .pyc files stay valid), files made by the build get this one. Default 2025-05-20.
   */
  sourceDateEpoch?: number
  signal?: AbortSignal
  /** A line at each step of the build (debootstrap's phases with their counts, the layer). */
  onProgress?: (line: string) => void
}

/**
 * A larger, realistic base for benchmarks: Debian minbase plus packages (nodejs and python3 by
 * default) from Debian's apt mirror with debootstrap, an `app` user, apt's caches and logs
 * removed, then one deterministic layer. Takes minutes; the result is cached by its inputs.
 * Throws `MIRROR_UNREACHABLE` (before doing anything) when the mirror does not answer.
 */
export async function buildDebianBase(options: DebianBaseOptions = {}): Promise<BaseImage> {
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR
  const mirror = options.mirror ?? 'http://deb.debian.org/debian'
  const suite = options.suite ?? 'bookworm'
  const packages = options.packages ?? ['nodejs', 'python3']
  const gzip = options.gzip ?? true
  const epoch = options.sourceDateEpoch ?? 1_747_699_200
  const minbase = options.minbase
  // Options added later are in the key only when set: earlier builds stay cached.
  const slimmed = options.slim || undefined
  const key = cacheKey({
    BUILDER_VERSION,
    mirror,
    suite,
    packages,
    gzip,
    epoch,
    minbase,
    slim: slimmed,
  })
  const outDir = options.outDir ?? join(cacheDir, `debian-${suite}-${key.slice(0, 12)}`)
  const cached = await readCachedBase(outDir, key)
  if (cached) return cached
  await checkMirror(mirror, suite, options.signal)
  const say = options.onProgress ?? (() => {})
  const started = performance.now()
  const phases = debootstrapPhases((line) => say(`${line} (${seconds(started)})`))
  const rootfs = join(outDir, 'rootfs')
  const staging = `${rootfs}.tmp-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  await mkdir(outDir, { recursive: true })
  try {
    if (minbase) {
      say(`${suite} minbase from ${minbase}, apt-get install ${packages.join(', ')} from ${mirror}`)
      await installInto(minbase, staging, {
        mirror,
        suite,
        packages,
        slim: options.slim ?? false,
        signal: options.signal,
      })
    } else {
      say(`debootstrap ${suite} from ${mirror}, minbase with ${packages.join(', ')}`)
      const debs = join(cacheDir, 'debs')
      await mkdir(debs, { recursive: true })
      await runCommand(
        'debootstrap',
        [
          '--variant=minbase',
          `--include=${packages.join(',')}`,
          `--cache-dir=${debs}`,
          suite,
          staging,
          mirror,
        ],
        { signal: options.signal, timeoutMs: 60 * 60_000, onLine: phases.line },
      )
      phases.end()
    }
    await finishRootfs(staging, { slim: options.slim ?? false })
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }
  const versions = await packageVersions(staging, packages)
  await rm(rootfs, { recursive: true, force: true })
  await rename(staging, rootfs)
  say(`writing the layer${gzip ? ' (gzip)' : ''} (${seconds(started)})`)
  const layer = await writeLayerTar(rootfs, {
    tarPath: join(outDir, 'layer.tar'),
    gzip,
    mtime: epoch,
    clampMtime: true,
    capabilities: true,
    signal: options.signal,
  })
  const base: BaseImage = {
    kind: 'debian',
    rootfs,
    layer,
    platform: { architecture: ociArchitecture(), os: 'linux' },
    config: { Env: [`PATH=${DEFAULT_PATH}`], Cmd: ['/bin/bash'], WorkingDir: '/' },
    description: `debian ${suite} minbase from ${mirror} with ${versions}`,
    key,
  }
  await writeBaseRecord(outDir, base)
  return base
}

/** A copy of the minbase tree with `packages` installed by apt-get in a chroot. */
async function installInto(
  minbase: string,
  staging: string,
  o: { mirror: string; suite: string; packages: string[]; slim: boolean; signal?: AbortSignal },
): Promise<void> {
  const run = { signal: o.signal, timeoutMs: 30 * 60_000 }
  await runCommand('cp', ['-a', minbase, staging], run)
  await writeFile(join(staging, 'etc/apt/sources.list'), `deb ${o.mirror} ${o.suite} main\n`)
  await copyFile('/etc/resolv.conf', join(staging, 'etc/resolv.conf')) // finishRootfs empties it
  if (o.slim) await slim(staging) // before apt-get: dpkg leaves those files out
  const script =
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"'
  await runCommand('chroot', [staging, 'sh', '-c', script, 'sh', ...o.packages], run)
}

/**
 * debootstrap's "I: <Verb> ..." lines as one line per phase (Retrieving, Validating, Extracting,
 * Unpacking, Configuring ...), with how many steps it took: hundreds of lines become about ten.
 */
function debootstrapPhases(say: (line: string) => void) {
  let phase: string | undefined
  let count = 0
  const close = () => {
    if (phase) say(`  ${phase.toLowerCase()}: ${count} step${count === 1 ? '' : 's'}`)
  }
  return {
    line(line: string) {
      const verb = /^I: ([A-Z][a-z]+)/.exec(line)?.[1]
      if (!verb) return
      if (verb !== phase) {
        close()
        phase = verb
        count = 0
      }
      count++
    },
    end: close,
  }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(0)} s`
}

/** The suite's Release file answers: the mirror is there (no internet is fine if it is local). */
async function checkMirror(mirror: string, suite: string, signal?: AbortSignal): Promise<void> {
  const url = `${mirror}/dists/${suite}/Release`
  const timeout = AbortSignal.timeout(15_000)
  try {
    const res = await fetch(url, {
      method: 'HEAD',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    })
    if (res.ok) return
    throw new Error(`HTTP ${res.status}`)
  } catch (err) {
    signal?.throwIfAborted()
    throw new ThawError(
      'MIRROR_UNREACHABLE',
      `Debian mirror ${url} is unreachable: ${(err as Error).message}`,
      {
        fault: 'user',
        cause: err,
      },
    )
  }
}

/**
 * What debian:bookworm-slim leaves out (debuerreotype's slimify): documentation except the
 * licences, manuals, info pages, translations. A third of a minbase with python3 (50 of 173 MB).
 */
const SLIM_DPKG_CONFIG = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`

/** The slim dpkg config (packages installed later skip those files too), and the files gone. */
async function slim(rootfs: string): Promise<void> {
  await mkdir(join(rootfs, 'etc/dpkg/dpkg.cfg.d'), { recursive: true })
  await writeFile(join(rootfs, 'etc/dpkg/dpkg.cfg.d/90thaw-slim'), SLIM_DPKG_CONFIG)
  const emptied = async (dir: string, keep: (name: string) => boolean) => {
    const names = await readdir(join(rootfs, dir)).catch(() => [])
    for (const n of names) if (!keep(n)) await rm(join(rootfs, dir, n), { recursive: true })
  }
  for (const pkg of await readdir(join(rootfs, 'usr/share/doc')).catch(() => [])) {
    await emptied(`usr/share/doc/${pkg}`, (n) => n === 'copyright')
  }
  await emptied('usr/share/man', () => false)
  await emptied('usr/share/info', () => false)
  await emptied('usr/share/locale', (n) => n === 'locale.alias')
}

/** Slim (above) if asked, the `app` user, quiet apt, no caches, no host identity. */
async function finishRootfs(rootfs: string, o: { slim: boolean }): Promise<void> {
  if (o.slim) await slim(rootfs)
  const { name, uid } = APP_USER
  await runCommand('chroot', [
    rootfs,
    'useradd',
    '--create-home',
    '--uid',
    String(uid),
    '--user-group',
    '--shell',
    '/bin/sh',
    name,
  ])
  await writeFile(
    join(rootfs, 'etc/apt/apt.conf.d/90thaw'),
    'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n',
  )
  await writeFile(join(rootfs, 'etc/resolv.conf'), '')
  await writeFile(join(rootfs, 'etc/hostname'), 'thaw\n')
  await writeFile(join(rootfs, 'etc/machine-id'), '')
  const transient = [
    'var/lib/apt/lists',
    'var/cache/apt/archives',
    'var/cache/apt/pkgcache.bin',
    'var/cache/apt/srcpkgcache.bin',
    'var/log/apt',
    'var/log/dpkg.log',
    'var/log/alternatives.log',
    'var/log/bootstrap.log',
    'var/cache/ldconfig/aux-cache',
  ]
  for (const path of transient) await rm(join(rootfs, path), { recursive: true, force: true })
  await mkdir(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true })
  await mkdir(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true })
}

async function packageVersions(rootfs: string, packages: string[]): Promise<string> {
  const { stdout } = await runCommand('chroot', [
    rootfs,
    'dpkg-query',
    '-W',
    '-f',
    '${Package} ${Version}\\n',
    ...packages,
  ])
  return stdout.trim().split('\n').join(', ')
}
