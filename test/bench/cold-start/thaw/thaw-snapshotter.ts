import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { startChild } from '../child.ts'
import type { BenchLink } from '../link.ts'
import { unmountUnder } from '../stargz/stargz-daemon.ts'
import { THAW_BIN } from './thaw-edge.ts'

/** One running `thaw snapshotter`; containerd reaches it through `[proxy_plugins.thaw]`. */
export interface BenchSnapshotter {
  readonly socket: string
  /** The snapshotter's JSON log so far. */
  output(): string
  /** Resolves when a log line matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>
  /** SIGTERM, then any mount left under its root, then the root. */
  close(): Promise<void>
}

/**
 * `thaw snapshotter` with a fresh root (empty frame cache, nothing mounted) on the client side of
 * `link`, pulling through the edge at `edgeUrl` (as reached from there), with its defaults
 * otherwise (background fetch of the rest of an image on, as `thaw host` has it).
 */
export async function startBenchSnapshotter(
  dir: string,
  link: BenchLink,
  edgeUrl: string,
): Promise<BenchSnapshotter> {
  const root = join(dir, 'root')
  const socket = join(dir, 'thaw.sock')
  await mkdir(dir, { recursive: true })
  const child = startChild(
    ...link.wrap(THAW_BIN, ['snapshotter', '--socket', socket, '--root', root, '--edge', edgeUrl]),
  )
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      await child.stop()
      await unmountUnder(dir)
      await rm(dir, { recursive: true, force: true })
    })())
  try {
    await child.waitFor(/"msg":"listening"/, 60_000)
  } catch (err) {
    await close()
    throw err
  }
  return {
    socket,
    output: () => child.output(),
    waitFor: (pattern, timeoutMs) => child.waitFor(pattern, timeoutMs),
    close,
  }
}
