import { appendFile, mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCommand } from '../../../../host/os/run-command.ts'
import { startChild } from '../child.ts'
import type { BenchLink } from '../link.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const INSTALL = resolve(HERE, '../../../../scripts/install-bench.sh')
/** Set: every daemon's debug log is appended there when it stops (mounts, prefetch, fetch times). */
const LOG = process.env.THAW_BENCH_STARGZ_LOG

/**
 * The stargz snapshotter's daemon (main.go here, over Debian's library), built by
 * scripts/install-bench.sh into the cache dir: installs the Debian packages it needs when they
 * are missing, builds when main.go or a package changed, and answers the binary's path.
 */
export async function buildStargzDaemon(cacheDir: string, signal?: AbortSignal): Promise<string> {
  const { stdout } = await runCommand(INSTALL, ['--cache-dir', cacheDir], {
    timeoutMs: 30 * 60_000,
    signal,
  })
  const path = stdout.trim().split('\n').at(-1)
  if (!path) throw new Error('scripts/install-bench.sh printed no daemon path')
  return path
}

/** One running daemon; containerd reaches it through `[proxy_plugins.stargz]` at `socket`. */
export interface StargzDaemon {
  readonly socket: string
  /** SIGTERM (the daemon unmounts its layers), then any mount left under its root, then the root. */
  close(): Promise<void>
}

/**
 * Starts the daemon with a fresh root on the client side of `link` (it fetches the layers: its
 * range requests must cross the link), fetching over plain HTTP (the bench registry has no TLS).
 * The library's defaults otherwise, as upstream's daemon has them with no config file:
 * prefetch of the landmarked files and background fetch of the rest on.
 */
export async function startStargzDaemon(
  binary: string,
  dir: string,
  link: BenchLink,
): Promise<StargzDaemon> {
  const root = join(dir, 'root')
  const socket = join(dir, 'stargz.sock')
  await mkdir(dir, { recursive: true })
  const daemon = startChild(
    ...link.wrap(binary, [
      '-root',
      root,
      '-address',
      socket,
      '-plain-http',
      ...(LOG ? ['-log-level', 'debug'] : []),
    ]),
  )
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      await daemon.stop()
      if (LOG) await appendFile(LOG, daemon.output())
      await unmountUnder(dir)
      await rm(dir, { recursive: true, force: true })
    })())
  try {
    await daemon.waitFor(/serving on /, 30_000)
  } catch (err) {
    await close()
    throw err
  }
  return { socket, close }
}

/** Unmounts every mount point under `dir`, deepest first (a daemon that died leaves its FUSE layers). */
export async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length)
  for (const point of points) {
    await runCommand('umount', [point]).catch(() => runCommand('umount', ['-l', point]))
  }
}
