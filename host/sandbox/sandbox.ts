import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { firewallInstances, installHostFirewall, removeHostFirewall } from './host-firewall.ts'
import {
  isInstanceAlive,
  listInstances,
  processStartTime,
  registerInstance,
  unregisterInstance,
  type InstanceRecord,
} from './instance-registry.ts'
import { cleanupLeftovers, emptyLeftoverReport, type LeftoverReport } from './leftovers.ts'
import { reclaimNodes } from './reclaim-nodes.ts'
import { detectOciRuntime, probeRuntime, RUNTIME_NAMES } from './detect-runtime.ts'
import type { UserNamespacePolicy, UserNamespaceSupport } from './node-user-namespace.ts'
import type { OciRuntime, OciRuntimeName } from './oci-runtime.ts'
import { SandboxNode, type NodeContext } from './sandbox-node.ts'
import { parseSubnetRange } from './subnet-leases.ts'
import { helperMissing } from './user-namespace.ts'

export interface SandboxOptions {
  /** Node directories, runtime state roots. Default /var/lib/thaw/sandbox. */
  stateDir?: string
  /**
   * Machine-wide directory shared by every thaw instance: the instance registry (for crash
   * cleanup) and the subnet leases. Default /run/thaw. Instances that share a subnet range
   * must share this directory.
   */
  registryDir?: string
  /** Force an OCI runtime (else the env THAW_OCI_RUNTIME, else the first of runc, crun that works). */
  runtime?: OciRuntimeName | OciRuntime
  /** Private range the nodes' /30s come from. Default 10.213.0.0/16 (16384 nodes). */
  subnet?: string
  /** Host directory mounted read-only at /.thaw/worker in every node. */
  workerDir?: string
  /** Size cap of each node's tmpfs (the writable layer and /.thaw/run). Default 1 GiB. */
  scratchBytes?: number
  /** Refuse connections nodes open to the host (host-firewall.ts). Default true. */
  firewall?: boolean
  /** Remove what dead instances left behind before starting. Default true. */
  cleanup?: boolean
  /**
   * A user namespace per node (node-user-namespace.ts): `auto` (default) where the probe and
   * the image's mount allow it, `required`, or `off`.
   */
  userNamespaces?: UserNamespacePolicy
  /**
   * Take over the nodes a dead sandbox of this state directory left running (its host was
   * killed): this sandbox runs under the dead one's instance id, so the nodes' names stay
   * valid; `takeKept()` hands them out. Default false: they are removed as any leftovers.
   */
  keepNodes?: boolean
  /**
   * Seconds a node waits for a next host once this one died, then ends itself (its shim deletes
   * the container and unmounts the node's overlay and tmpfs: oci-runtime.ts NODE_SHIM); 0 waits
   * forever. The setting of the last host that held a node applies. Default 300.
   */
  orphanTimeoutSeconds?: number
  signal?: AbortSignal
}

export interface Sandbox {
  readonly instanceId: string
  readonly runtime: OciRuntime
  readonly stateDir: string
  /** What the start-up cleanup removed. */
  readonly leftovers: LeftoverReport | undefined
  /** Whether nodes get user namespaces here, and why not. */
  readonly userNamespaces: UserNamespaceSupport
  /** A warm node: everything that does not depend on the image is done. */
  prepareNode(options?: { signal?: AbortSignal }): Promise<SandboxNode>
  /** Nodes prepared and not yet destroyed. */
  nodes(): SandboxNode[]
  /**
   * The running nodes taken over from a dead host (`keepNodes`), once: the caller adopts or
   * destroys each (close() destroys those still here).
   */
  takeKept(): SandboxNode[]
  /** Destroys every node, removes the firewall table and the instance's records. Idempotent. */
  close(): Promise<void>
}

/**
 * The node sandbox of one host process. Creating it picks the OCI runtime, cleans up after dead
 * instances, registers this one, and installs its firewall table; nodes are then prepared and
 * specialized one by one (sandbox-node.ts). Every name it creates outside its own directory
 * (containers, network namespaces, veths, nft table, leases) carries its random 6-character
 * instance id, so concurrent instances never touch each other's nodes.
 */
export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  if (process.getuid?.() !== 0) {
    throw new ThawError(
      'SANDBOX_NEEDS_ROOT',
      'the node sandbox needs root (namespaces, mounts, runc)',
      {
        fault: 'user',
      },
    )
  }
  const stateDir = resolve(options.stateDir ?? '/var/lib/thaw/sandbox')
  const registryDir = resolve(options.registryDir ?? '/run/thaw')
  const leaseDir = join(registryDir, 'subnets')
  const subnets = parseSubnetRange(options.subnet ?? '10.213.0.0/16')
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  if (options.workerDir) await checkWorkerDir(options.workerDir)
  const runtime = await pickRuntime(options, stateDir)
  const policy = options.userNamespaces ?? 'auto'
  // The node's root (an unprivileged host id) must reach its node's directory: no listing.
  if (policy !== 'off') await chmod(stateDir, 0o711)
  const userNamespaces = await userNamespaceSupport(policy, runtime, stateDir, options.signal)
  const dead = options.keepNodes ? await deadInstanceOf(registryDir, stateDir, runtime) : undefined
  const instanceId = dead?.id ?? (await newInstanceId(registryDir))
  const instanceDir = join(stateDir, instanceId)
  await mkdir(instanceDir, { recursive: true, mode: policy === 'off' ? 0o700 : 0o711 })
  await registerInstance(registryDir, {
    id: instanceId,
    pid: process.pid,
    startTime: (await processStartTime(process.pid))!,
    stateDir,
    runtime: { name: runtime.name, path: runtime.path, root: runtime.root },
    keepNodes: options.keepNodes,
  })
  const leftovers =
    options.cleanup === false
      ? undefined
      : await cleanupLeftovers({
          registryDir,
          leaseDir,
          stateDir,
          runtime,
          exceptInstance: instanceId,
        })
  const firewall = options.firewall ?? true
  // A taken-over instance's table is there already: its nodes are never unfiltered.
  if (firewall && !(await firewallInstances()).includes(instanceId)) {
    await installHostFirewall(instanceId, `tv${instanceId}`)
  }
  const ctx: NodeContext = {
    instanceId,
    instanceDir,
    runtime,
    leaseDir,
    subnets,
    scratchBytes: options.scratchBytes ?? 1024 ** 3,
    workerDir: options.workerDir,
    maxOpenFiles: Math.min(await hardOpenFileLimit(), 65536),
    userNamespaces,
    notIdmappable: new Map(),
    orphanTimeoutSeconds: options.orphanTimeoutSeconds,
  }
  const live = new Set<SandboxNode>()
  let counter = 0
  let closing: Promise<void> | undefined
  ctx.onDestroyed = (node) => void live.delete(node)
  let kept: SandboxNode[] = []
  if (dead) {
    const report = emptyLeftoverReport()
    const reclaimed = await reclaimNodes(ctx, dead, report)
    kept = reclaimed.kept
    counter = reclaimed.nextIndex
    for (const node of kept) live.add(node)
    for (const e of report.errors) process.stderr.write(`thaw sandbox: ${e}\n`)
  }
  return {
    instanceId,
    runtime,
    stateDir,
    leftovers,
    userNamespaces,
    async prepareNode(o = {}) {
      if (closing) throw new ThawError('SANDBOX_CLOSED', 'the sandbox is closed')
      const node = await SandboxNode.prepare(ctx, counter++, o.signal)
      live.add(node)
      if (closing) {
        await node.destroy()
        throw new ThawError('SANDBOX_CLOSED', 'the sandbox was closed while a node was prepared')
      }
      return node
    },
    nodes: () => [...live],
    takeKept: () => kept.splice(0).filter((n) => n.state === 'running'),
    close() {
      closing ??= (async () => {
        const results = await Promise.allSettled([...live].map((n) => n.destroy()))
        if (firewall) await removeHostFirewall(instanceId)
        await rm(instanceDir, { recursive: true, force: true })
        await unregisterInstance(registryDir, instanceId)
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
        if (failed) throw failed.reason
      })()
      return closing
    },
  }
}

async function pickRuntime(options: SandboxOptions, stateDir: string): Promise<OciRuntime> {
  if (typeof options.runtime === 'object') return options.runtime
  const forced = options.runtime ?? process.env.THAW_OCI_RUNTIME
  if (forced !== undefined && forced !== '' && !RUNTIME_NAMES.includes(forced as OciRuntimeName)) {
    throw new ThawError('OCI_RUNTIME_UNKNOWN', `unknown OCI runtime "${forced}" (runc or crun)`, {
      fault: 'user',
    })
  }
  return detectOciRuntime({
    stateDir,
    force: (forced || undefined) as OciRuntimeName | undefined,
    signal: options.signal,
  })
}

/** The probe decides under `auto` and `required` (which fails here when it fails). */
async function userNamespaceSupport(
  policy: UserNamespacePolicy,
  runtime: OciRuntime,
  stateDir: string,
  signal?: AbortSignal,
): Promise<UserNamespaceSupport> {
  if (policy === 'off') return { policy, enabled: false, reason: 'user namespaces are off' }
  let reason = await helperMissing()
  if (!reason) {
    try {
      await probeRuntime(runtime, stateDir, signal, { userNamespace: true })
      return { policy, enabled: true }
    } catch (err) {
      signal?.throwIfAborted()
      reason = `the user namespace probe failed: ${err instanceof Error ? err.message : err}`
    }
  }
  if (policy === 'required') {
    throw new ThawError('USERNS_UNAVAILABLE', `nodes cannot have user namespaces: ${reason}`)
  }
  return { policy, enabled: false, reason }
}

/**
 * The dead instance of this state directory and runtime whose nodes a new sandbox takes over
 * (the registry is in /run: after a reboot there is none, and nothing to take over).
 */
async function deadInstanceOf(
  registryDir: string,
  stateDir: string,
  runtime: OciRuntime,
): Promise<InstanceRecord | undefined> {
  for (const r of await listInstances(registryDir)) {
    if (r.stateDir !== stateDir || r.runtime.root !== runtime.root) continue
    if (!(await isInstanceAlive(r))) return r
  }
  return undefined
}

async function newInstanceId(registryDir: string): Promise<string> {
  for (;;) {
    const id = [...randomBytes(6)]
      .map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36])
      .join('')
    if (
      /^[a-z]/.test(id) &&
      !(await readFile(join(registryDir, 'instances', `${id}.json`)).catch(() => undefined))
    ) {
      return id
    }
  }
}

/** Nodes run as any user: the worker must be readable and searchable by all. */
async function checkWorkerDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory() || (info.mode & 0o005) !== 0o005) {
    throw new ThawError(
      'WORKER_DIR_INVALID',
      `worker directory ${dir} must be a directory that every user can read (mode o+rx)`,
      { fault: 'user' },
    )
  }
}

/** RLIMIT_NOFILE's hard limit of this process (/proc/self/limits "Max open files"). */
async function hardOpenFileLimit(): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8')
  const m = text.match(/^Max open files\s+\S+\s+(\S+)/m)
  return m && /^\d+$/.test(m[1]!) ? Number(m[1]) : 1024
}
