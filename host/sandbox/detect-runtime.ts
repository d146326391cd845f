import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { copyBinaryWithLibraries } from '../os/host-files.ts'
import { NODE_CAPABILITIES } from './capabilities.ts'
import { containerCgroupDirs, hasMemorySwapLimit } from './cgroups.ts'
import { unmountAll } from './mounts.ts'
import { nodeSpecTemplate, specializeSpec } from './node-spec.ts'
import { createOciRuntime, type OciRuntime, type OciRuntimeName } from './oci-runtime.ts'
import { containerFiles, startContainer } from './start-container.ts'
import {
  createUserAndNetworkNamespaces,
  idmapMount,
  PROBE_ID_RANGE,
  type IdRange,
} from './user-namespace.ts'

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
 * with /sys/fs/cgroup mounted, memory, pids and CPU limits, its capabilities and seccomp filter. (On this machine kind crun refuses:
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

/**
 * Runs `/bin/sh -c 'echo …'` in a throwaway container and checks its output and status. With
 * `userNamespace`, the container runs as nodes that have one do (user-namespace.ts): in a new
 * user namespace with a network namespace it owns, from an idmapped root, and must see its
 * root mapped to the probe's host id.
 */
export async function probeRuntime(
  runtime: OciRuntime,
  stateDir: string,
  signal?: AbortSignal,
  options: { userNamespace?: boolean } = {},
) {
  const token = randomBytes(4).toString('hex')
  const id = `thaw-probe-${process.pid}-${token}`
  const dir = join(stateDir, id)
  const tree = join(dir, 'rootfs')
  const range = options.userNamespace ? PROBE_ID_RANGE : undefined
  let release: (() => Promise<void>) | undefined
  try {
    await mkdir(tree, { recursive: true })
    await copyBinaryWithLibraries('/bin/sh', tree)
    const userns = range && (await probeNamespaces(dir, tree, range, signal))
    const rootfs = userns?.rootfs ?? tree
    const cgroups = await containerCgroupDirs(id)
    // Inside a user namespace, uid_map's second field is the host id of root.
    const print = range ? `read a b c < /proc/self/uid_map; echo probe-${token} $b` : ''
    const spec = specializeSpec(
      nodeSpecTemplate({
        rootfs,
        cgroupsPath: id,
        hostname: 'probe',
        maxOpenFiles: 1024,
        netnsPath: userns?.netns,
      }),
      {
        args: ['/bin/sh', '-c', print || `echo probe-${token}`],
        env: ['PATH=/bin'],
        cwd: '/',
        user: { uid: 0, gid: 0, additionalGids: [] },
        memoryBytes: 64 * 1024 * 1024,
        limitSwap: await hasMemorySwapLimit(cgroups),
        pids: 16,
        cpuMillis: 100,
        capabilities: NODE_CAPABILITIES,
        seccomp: 'default',
        userNamespace: userns && { path: userns.userns, range: range! },
      },
    )
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec))
    const started = await startContainer(runtime, id, dir, containerFiles(dir), { signal })
    release = started.release
    const code = await started.exit
    const out = started.output.text('stdout').trim()
    const expected = range ? `probe-${token} ${range.hostId}` : `probe-${token}`
    if (code !== 0 || out !== expected) {
      const err = started.output.text('stderr').trim().split('\n').at(-1)
      throw new Error(
        `the probe container exited with ${code} and printed "${out}"${err ? ` (${err})` : ''}`,
      )
    }
  } finally {
    await runtime.delete(id).catch(() => {})
    await unmountAll(dir).catch(() => {})
    await release?.()
    await rm(dir, { recursive: true, force: true })
  }
}

/** The probe's user and network namespaces, and its files idmapped at `<dir>/root`. */
async function probeNamespaces(dir: string, tree: string, range: IdRange, signal?: AbortSignal) {
  const ns = { userns: join(dir, 'userns'), netns: join(dir, 'netns') }
  await createUserAndNetworkNamespaces(ns, range, signal)
  const rootfs = join(dir, 'root')
  await mkdir(rootfs)
  await idmapMount(ns.userns, tree, rootfs, signal)
  return { ...ns, rootfs }
}

function describeFailure(err: unknown): string {
  if ((err as NodeJS.ErrnoException)?.code === 'ENOENT') return 'not installed'
  return err instanceof Error ? err.message : String(err)
}
