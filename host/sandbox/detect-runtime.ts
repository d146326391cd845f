import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { copyBinaryWithLibraries } from '../os/host-files.ts'
import { containerCgroupDirs, hasMemorySwapLimit } from './cgroups.ts'
import { nodeSpecTemplate, specializeSpec } from './node-spec.ts'
import { createOciRuntime, type OciRuntime, type OciRuntimeName } from './oci-runtime.ts'
import { startContainer } from './start-container.ts'

export const RUNTIME_NAMES: readonly OciRuntimeName[] = ['runc', 'crun']

export interface DetectRuntimeOptions {
  /** Runtime state roots (`<stateDir>/<name>`) and the probe's scratch directory go here. */
  stateDir: string
  /** Use only this one (still probed, so a broken one fails now with its reason). */
  force?: OciRuntimeName
  /** Binary paths, when not on PATH. */
  paths?: Partial<Record<OciRuntimeName, string>>
  signal?: AbortSignal
}

/**
 * Picks the OCI runtime that works on this machine by running a trivial container with each,
 * in the order runc, crun, with everything a node uses: all its namespaces, a cgroup namespace
 * with /sys/fs/cgroup mounted, memory and pids limits. (On this machine kind crun refuses:
 * "cgroups in hybrid mode not supported, drop all controllers from cgroupv2".) If none works,
 * the error names each runtime and why it failed.
 */
export async function detectOciRuntime(options: DetectRuntimeOptions): Promise<OciRuntime> {
  const candidates = options.force ? [options.force] : RUNTIME_NAMES
  const failures: string[] = []
  for (const name of candidates) {
    const runtime = createOciRuntime(name, {
      root: join(options.stateDir, name),
      path: options.paths?.[name],
    })
    try {
      await probeRuntime(runtime, options.stateDir, options.signal)
      return runtime
    } catch (err) {
      options.signal?.throwIfAborted()
      failures.push(`${name}: ${describeFailure(err)}`)
    }
  }
  throw new ThawError(
    'OCI_RUNTIME_UNAVAILABLE',
    `no working OCI runtime (tried ${candidates.join(', ')}): ${failures.join('; ')}`,
  )
}

/** Runs `/bin/sh -c 'echo …'` in a throwaway container and checks its output and status. */
export async function probeRuntime(runtime: OciRuntime, stateDir: string, signal?: AbortSignal) {
  const token = randomBytes(4).toString('hex')
  const id = `thaw-probe-${process.pid}-${token}`
  const dir = join(stateDir, id)
  const rootfs = join(dir, 'rootfs')
  try {
    await mkdir(rootfs, { recursive: true })
    await copyBinaryWithLibraries('/bin/sh', rootfs)
    const cgroups = await containerCgroupDirs(id)
    const spec = specializeSpec(
      nodeSpecTemplate({ rootfs, cgroupsPath: id, hostname: 'probe', maxOpenFiles: 1024 }),
      {
        args: ['/bin/sh', '-c', `echo probe-${token}`],
        env: ['PATH=/bin'],
        cwd: '/',
        user: { uid: 0, gid: 0, additionalGids: [] },
        memoryBytes: 64 * 1024 * 1024,
        limitSwap: await hasMemorySwapLimit(cgroups),
        pids: 16,
      },
    )
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec))
    const files = { pidFile: join(dir, 'pid'), logFile: join(dir, 'runtime.log') }
    const started = await startContainer(runtime, id, dir, files, signal)
    const [code] = await new Promise<[number | null]>((resolve) => {
      if (started.child.exitCode !== null) return resolve([started.child.exitCode])
      started.child.once('close', (c) => resolve([c]))
    })
    const out = started.output.text('stdout').trim()
    if (code !== 0 || out !== `probe-${token}`) {
      const err = started.output.text('stderr').trim().split('\n').at(-1)
      throw new Error(
        `the probe container exited with ${code} and printed "${out}"${err ? ` (${err})` : ''}`,
      )
    }
  } finally {
    await runtime.delete(id).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

function describeFailure(err: unknown): string {
  if ((err as NodeJS.ErrnoException)?.code === 'ENOENT') return 'not installed'
  return err instanceof Error ? err.message : String(err)
}
