import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * A real Debian root filesystem (`debootstrap --variant=minbase bookworm`), built once and cached
 * under /var/tmp/thaw-cache (override with THAW_CACHE) for later tests and benchmarks.
 *
 * Concurrent callers (parallel test files, a benchmark running beside the tests) serialise on an
 * flock(1) lock file, so exactly one debootstrap runs; the tree is built in a temporary directory
 * and renamed into place, so a half-built tree is never seen. A killed build leaves only the
 * temporary directory, which the next builder removes.
 */
export const THAW_CACHE = process.env.THAW_CACHE ?? '/var/tmp/thaw-cache'
const MIRROR = 'http://deb.debian.org/debian'

export type Prepared = { path: string; skipped?: undefined } | { path?: undefined; skipped: string }

/** The cached rootfs directory, building it first if needed; `skipped` says why it is unavailable. */
export async function debianRootfs(): Promise<Prepared> {
  const dir = join(THAW_CACHE, 'debian-bookworm-minbase')
  const rootfs = join(dir, 'rootfs')
  if (existsSync(join(rootfs, 'bin/bash'))) return { path: rootfs }
  if (process.getuid?.() !== 0) return { skipped: 'debootstrap needs root' }
  if (!existsSync('/usr/sbin/debootstrap')) return { skipped: 'debootstrap is not installed' }
  const reachable = await mirrorReachable()
  if (reachable !== true) return { skipped: `the Debian mirror is unreachable (${reachable})` }
  await mkdir(dir, { recursive: true })
  const script = `set -e
[ -x "$2/bin/bash" ] && exit 0
rm -rf "$2.tmp"
debootstrap --variant=minbase bookworm "$2.tmp" ${MIRROR} > "$1/debootstrap.log" 2>&1
rm -rf "$2" && mv "$2.tmp" "$2"`
  const code = await underLock(script, rootfs)
  if (code !== 0 || !existsSync(join(rootfs, 'bin/bash'))) {
    return { skipped: `debootstrap failed (exit ${code}); see ${join(dir, 'debootstrap.log')}` }
  }
  return { path: rootfs }
}

/**
 * The rootfs packed as one uncompressed layer by GNU tar (numeric owners, xattrs, sorted names:
 * the same bytes every time), cached beside it. Paths are `./`-relative as Docker/umoci write them
 * after stripping; GNU tar writes `./etc/...`, which a layer reader must accept.
 */
export async function debianLayerTar(): Promise<Prepared> {
  const root = await debianRootfs()
  if (root.skipped !== undefined) return root
  const dir = join(THAW_CACHE, 'debian-bookworm-minbase')
  const tar = join(dir, 'layer.tar')
  if (existsSync(tar)) return { path: tar }
  const script = `set -e
[ -f "$2" ] && exit 0
tar --numeric-owner --xattrs --xattrs-include='*' --sort=name --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$3" -cf "$2.tmp" .
mv "$2.tmp" "$2"`
  const code = await underLock(script, tar, root.path)
  if (code !== 0) return { skipped: `packing the Debian rootfs failed (exit ${code})` }
  return { path: tar }
}

/**
 * The layer as a one-layer OCI image layout (tag `debian`, made by umoci from the same tar),
 * cached beside it: what mount tests push through a registry.
 */
export async function debianLayout(): Promise<Prepared> {
  const tar = await debianLayerTar()
  if (tar.skipped !== undefined) return tar
  const dir = join(THAW_CACHE, 'debian-bookworm-minbase')
  const layout = join(dir, 'layout')
  if (existsSync(join(layout, 'index.json'))) return { path: layout }
  const script = `set -e
[ -f "$2/index.json" ] && exit 0
rm -rf "$2.tmp"
umoci init --layout "$2.tmp"
umoci new --image "$2.tmp:debian"
umoci raw add-layer --image "$2.tmp:debian" "$3"
mv "$2.tmp" "$2"`
  const code = await underLock(script, layout, tar.path)
  if (code !== 0)
    return { skipped: `making an OCI layout of the Debian layer failed (exit ${code})` }
  return { path: layout }
}

/**
 * Runs a build step as `sh -c script sh DIR ...args` under the cache's flock, so concurrent
 * callers build once (`$1` is the cache folder).
 */
function underLock(script: string, ...args: string[]): Promise<number | null> {
  const dir = join(THAW_CACHE, 'debian-bookworm-minbase')
  return runQuiet('flock', [join(dir, 'lock'), 'sh', '-c', script, 'sh', dir, ...args])
}

async function mirrorReachable(): Promise<true | string> {
  try {
    const res = await fetch(`${MIRROR}/dists/bookworm/Release`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(10_000),
    })
    return res.ok ? true : `HTTP ${res.status}`
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}

async function runQuiet(command: string, args: string[]): Promise<number | null> {
  const child = spawn(command, args, { stdio: 'ignore' })
  const [code] = (await once(child, 'exit')) as [number | null]
  return code
}
