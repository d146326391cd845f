import { spawn } from 'node:child_process'
import { mkdir, rename, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ThawError } from '../../runtime/errors.ts'
import { runCommand } from '../os/run-command.ts'
import type { IdMapping } from './runtime-spec.ts'

/**
 * A node's user namespace: its root is an unprivileged host id. Each node maps container ids
 * 0..65535 onto a range of its own, derived from its subnet lease (already unique machine-wide),
 * so no two nodes share host ids: node lease i gets host ids 2^30 + (i + 1) · 65536 onward; block 0
 * is the runtime probe's. Every id of the range stays below 2^31.
 *
 * The image's files, owned by host ids 0.., are seen through an idmapped mount of the lower
 * (thaw-userns idmap), so they appear owned by the node's root; the writable upper is stored
 * with the node's host ids. The network namespace is created inside the user namespace when
 * the node is prepared (thaw-userns create), so the node's root may mount its own sysfs there.
 */
export const ID_RANGE_SIZE = 65536
const FIRST_HOST_ID = 2 ** 30
const BLOCKS = (2 ** 31 - FIRST_HOST_ID) / ID_RANGE_SIZE

export interface IdRange {
  /** Host id of the node's uid and gid 0. */
  hostId: number
  size: number
}

/** The range of a node leased subnet `index`; undefined past the last block. */
export function nodeIdRange(index: number): IdRange | undefined {
  if (!Number.isInteger(index) || index < 0 || index + 1 >= BLOCKS) return undefined
  return { hostId: FIRST_HOST_ID + (index + 1) * ID_RANGE_SIZE, size: ID_RANGE_SIZE }
}

/** The runtime probe's range (block 0). */
export const PROBE_ID_RANGE: IdRange = { hostId: FIRST_HOST_ID, size: ID_RANGE_SIZE }

/** config.json `uidMappings` and `gidMappings` for a range. */
export function idMappings(range: IdRange): IdMapping[] {
  return [{ containerID: 0, hostID: range.hostId, size: range.size }]
}

/** Host id of container id `id` in `range` (undefined when the range does not hold it). */
export function hostIdOf(range: IdRange, id: number): number | undefined {
  return id >= 0 && id < range.size ? range.hostId + id : undefined
}

const SOURCE = fileURLToPath(new URL('./native/thaw-userns.c', import.meta.url))
/** The built helper (scripts/install.sh, or buildUserNamespaceHelper). */
export const USERNS_HELPER = fileURLToPath(new URL('./native/build/thaw-userns', import.meta.url))

/** Why the helper cannot run here, or undefined when it is built and current. */
export async function helperMissing(): Promise<string | undefined> {
  const [built, source] = await Promise.all([
    stat(USERNS_HELPER).catch(() => undefined),
    stat(SOURCE).catch(() => undefined),
  ])
  if (!built) return `${USERNS_HELPER} is not built (scripts/install.sh builds it)`
  if (source && source.mtimeMs > built.mtimeMs) return `${USERNS_HELPER} is older than its source`
  return undefined
}

/** Compiles the helper with cc (gcc from install.sh's packages), atomically. */
export async function buildUserNamespaceHelper(signal?: AbortSignal): Promise<string> {
  if ((await helperMissing()) === undefined) return USERNS_HELPER
  await mkdir(dirname(USERNS_HELPER), { recursive: true })
  const tmp = `${USERNS_HELPER}.tmp-${process.pid}`
  await runCommand('cc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE], { signal })
  await rename(tmp, USERNS_HELPER)
  return USERNS_HELPER
}

/** Creates the user namespace at `usernsFile` and a network namespace owned by it at `netnsFile`. */
export async function createUserAndNetworkNamespaces(
  files: { userns: string; netns: string },
  range: IdRange,
  signal?: AbortSignal,
): Promise<void> {
  const id = String(range.hostId)
  await helper(['create', files.userns, files.netns, id, id, String(range.size)], signal)
}

/**
 * Binds `source` at `target` with the ids of the namespace at `usernsFile`. Throws
 * IDMAP_UNSUPPORTED when the kernel or the source's filesystem cannot (a FUSE server has to
 * offer FUSE_ALLOW_IDMAP, Linux 6.12+; overlayfs never can).
 */
export async function idmapMount(
  usernsFile: string,
  source: string,
  target: string,
  signal?: AbortSignal,
): Promise<void> {
  await helper(['idmap', usernsFile, source, target], signal)
}

/**
 * Runs the helper; exit 3 is IDMAP_UNSUPPORTED (native/thaw-userns.c). Aborting kills it and
 * rejects with the signal's reason; it gets 10 s.
 */
function helper(args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted()
    const child = spawn(USERNS_HELPER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    let failure: unknown
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const stop = (reason: unknown) => {
      failure ??= reason
      child.kill('SIGKILL')
    }
    const onAbort = () => stop(signal!.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => stop(new ThawError('USERNS_FAILED', 'thaw-userns hung')), 10_000)
    child.on('error', stop)
    child.on('close', (code) => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (failure !== undefined) return reject(failure)
      if (code === 0) return resolve()
      const what = `thaw-userns ${args[0]}: ${stderr.trim() || `exit ${code}`}`
      reject(new ThawError(code === 3 ? 'IDMAP_UNSUPPORTED' : 'USERNS_FAILED', what))
    })
  })
}
