import { chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import { NODE_CAPABILITIES, type Capability } from './capabilities.ts'
import { hasMemorySwapLimit } from './cgroups.ts'
import { mountsUnder, mountTmpfs, unmountAll } from './mounts.ts'
import { createNodeHandle, type NodeProcess } from './node-handle.ts'
import {
  createNodeNetwork,
  destroyNodeNetwork,
  forwardPortToLoopback,
  netnsPath,
  type NodeNetworkNames,
} from './node-network.ts'
import { mergeEnv, processArgs, workingDir, type ImageProcessConfig } from './node-process.ts'
import { mountNodeRoot } from './node-root.ts'
import { nodeSpecTemplate, specializeSpec } from './node-spec.ts'
import { writeNodeRecord, type NodeRecord } from './node-record.ts'
import type { NodeUserNamespace, UserNamespaceSupport } from './node-user-namespace.ts'
import type { OciRuntime } from './oci-runtime.ts'
import type { OutputListener } from './output-tail.ts'
import type { RuntimeSpec } from './runtime-spec.ts'
import { makeShimFifos } from './shim-fifos.ts'
import { containerFiles, followContainer, startContainer } from './start-container.ts'
import { leaseSubnet, releaseSubnet, type SubnetLease, type SubnetRange } from './subnet-leases.ts'
import { nodeIdRange, type IdRange } from './user-namespace.ts'

/** A node's CPU unless told otherwise: one CPU's worth of time (cgroup quota). */
export const NODE_DEFAULT_CPU_MILLIS = 1000

/** What every node of one sandbox instance shares. */
export interface NodeContext {
  instanceId: string
  /** `<stateDir>/<instanceId>`: one directory per node below it. */
  instanceDir: string
  runtime: OciRuntime
  leaseDir: string
  subnets: SubnetRange
  scratchBytes: number
  workerDir?: string
  maxOpenFiles: number
  userNamespaces: UserNamespaceSupport
  /** st_dev of lowers that cannot be idmapped → why (user namespaces are not tried there). */
  notIdmappable: Map<number, string>
  /** Seconds a node waits for a next host once its host died (0: forever; oci-runtime.ts). */
  orphanTimeoutSeconds?: number
  /** Called once a node is fully destroyed. */
  onDestroyed?: (node: SandboxNode) => void
}

export interface SpecializeOptions {
  /** The image's root filesystem: any directory (later a FUSE mount). Never written. */
  lowerDir: string
  imageConfig: ImageProcessConfig
  /** App settings; they override the image's Env. */
  env?: Record<string, string>
  /** The whole argv, replacing Entrypoint and Cmd (the host starting its worker). */
  args?: string[]
  memoryBytes: number
  /** Tasks (processes and threads) the node may have; node itself needs about a dozen. */
  pids: number
  /** CPU time in thousandths of a CPU (cgroup CFS quota per 100 ms). Default 1000. */
  cpuMillis?: number
  /** The node's capabilities (its root holds them). Default NODE_CAPABILITIES. */
  capabilities?: readonly Capability[]
  /** Default 'default': thaw's seccomp filter (seccomp-profile.ts). */
  seccomp?: 'default' | 'unconfined'
  /** Extra host directories, read-only inside the node. */
  readOnlyBinds?: { source: string; destination: string }[]
  /** Receives every chunk of output from the first byte on. */
  onOutput?: OutputListener
  /** Kept in the node's record for a host that takes the node over (node-record.ts `owner`). */
  owner?: unknown
  signal?: AbortSignal
}

export type NodeState = 'warm' | 'specializing' | 'running' | 'failed' | 'destroyed'

/**
 * One node: prepared ahead of time (`prepareNode`), specialized once for one image, destroyed
 * after. Single use: a node that ran one app never runs another.
 *
 * Its directory (`<instanceDir>/<id>`): `config.json`, `pid`, `runtime.log`, `userns` (its user
 * namespace, when it has one), and `fs/`, a tmpfs holding the overlay's `upper/` and `work/`,
 * its mount point `root/`, `lower/` (the image idmapped for the user namespace), `thaw/` (bound
 * read-only at /.thaw) and `run/` (bound read-write at /.thaw/run). With a user namespace the
 * directory is group-owned by the node's host gid 0 and mode 0710: the node's root must reach
 * its root filesystem, and no other node's may.
 */
export class SandboxNode {
  readonly id: string
  readonly containerId: string
  readonly dir: string
  readonly ip: string
  readonly hostIp: string
  /** Host path of the node's /.thaw/run: the worker's unix sockets appear here. */
  readonly runDir: string
  /** Milliseconds: tmpfs and directories, netns and veth (the two run side by side), in all. */
  prepareTimings = { scratchMs: 0, networkMs: 0, totalMs: 0 }
  readonly #ctx: NodeContext
  readonly #names: NodeNetworkNames
  readonly #lease: SubnetLease
  readonly #template: RuntimeSpec
  /** Host ids of the node's user namespace (undefined: it will run without one). */
  readonly #range: IdRange | undefined
  #userNamespace: NodeUserNamespace | undefined
  #state: NodeState = 'warm'
  #process: NodeProcess | undefined
  #specializing: Promise<NodeProcess> | undefined
  #destroying: Promise<void> | undefined
  /** Specialized (or reclaimed with one): the runtime may hold a container to delete. */
  #hasContainer = false
  /** Aborts a specialize still in flight when the node is destroyed. */
  readonly #abort = new AbortController()
  /** Lets go of the node's host FIFO (start-container.ts RunningContainer.release). */
  #release: (() => Promise<void>) | undefined

  /** What a next host needs to take this node over, or to remove it (node-record.ts). */
  #record: NodeRecord

  private constructor(
    ctx: NodeContext,
    index: number,
    lease: SubnetLease,
    range = ctx.userNamespaces.enabled ? nodeIdRange(lease.index) : undefined,
  ) {
    const suffix = index.toString(36)
    this.#ctx = ctx
    this.#lease = lease
    this.id = `n${suffix}`
    this.containerId = `thaw-${ctx.instanceId}-${suffix}`
    this.#names = { netns: this.containerId, hostVeth: `tv${ctx.instanceId}${suffix}` }
    this.dir = join(ctx.instanceDir, this.id)
    this.ip = lease.nodeIp
    this.hostIp = lease.hostIp
    this.runDir = join(this.dir, 'fs/run')
    this.#range = range
    this.#record = { version: 1, index, lease, range, created: new Date().toISOString() }
    this.#template = nodeSpecTemplate({
      rootfs: join(this.dir, 'fs/root'),
      netnsPath: netnsPath(this.#names.netns),
      cgroupsPath: this.containerId,
      hostname: this.containerId,
      thawDir: join(this.dir, 'fs/thaw'),
      runDir: this.runDir,
      workerDir: ctx.workerDir,
      maxOpenFiles: ctx.maxOpenFiles,
    })
  }

  /** The image-independent part: directories, scratch tmpfs, network namespace and veth. */
  static async prepare(
    ctx: NodeContext,
    index: number,
    signal?: AbortSignal,
  ): Promise<SandboxNode> {
    const t0 = performance.now()
    const lease = await leaseSubnet(ctx.leaseDir, ctx.subnets, ctx.instanceId)
    const node = new SandboxNode(ctx, index, lease)
    const since = (t: number) => () => performance.now() - t
    try {
      await mkdir(join(node.dir, 'fs'), { recursive: true })
      await writeNodeRecord(node.dir, node.#record)
      const range = node.#range
      if (range) {
        await chown(node.dir, 0, range.hostId)
        await chmod(node.dir, 0o710)
      }
      const userns = range && { file: join(node.dir, 'userns'), range }
      const t1 = performance.now()
      const [scratchMs, networkMs] = await Promise.all([
        node.#prepareScratch(signal).then(since(t1)),
        createNodeNetwork(node.#names, lease, signal, userns).then(since(t1)),
        makeShimFifos(containerFiles(node.dir)), // here, not in the cold start
      ])
      node.prepareTimings = { scratchMs, networkMs, totalMs: performance.now() - t0 }
      return node
    } catch (err) {
      await node.destroy().catch(() => {}) // the first error is the one worth reporting
      throw err
    }
  }

  /**
   * A node a host that died left (its record, read from `<instanceDir>/n<index>`): `running`,
   * followed through its shim's files (and holding its host FIFO, so it stops waiting for a
   * host), when its shim still runs, else `failed` (destroy removes it). Only the sandbox that
   * took over the dead host's instance calls this (sandbox.ts).
   */
  static async reclaim(
    ctx: NodeContext,
    record: NodeRecord,
    shimAlive: boolean,
  ): Promise<SandboxNode> {
    const node = new SandboxNode(ctx, record.index, record.lease, record.range)
    node.#record = record
    const c = record.container
    if (!c) {
      node.#state = 'failed'
      return node
    }
    node.#hasContainer = true // running or not: destroy deletes it
    if (!shimAlive) {
      node.#state = 'failed'
      return node
    }
    const files = containerFiles(node.dir)
    const container = await followContainer(files, c.shim, c.pid, ctx.orphanTimeoutSeconds).catch(
      () => undefined, // no host FIFO: a node of an older thaw, removed
    )
    if (!container) {
      node.#state = 'failed'
      return node
    }
    node.#release = container.release
    node.#process = createNodeHandle({
      container,
      ip: node.ip,
      cgroups: c.cgroups,
      timings: { mountMs: 0, configMs: 0, startMs: 0, totalMs: 0 },
      destroy: () => node.destroy(),
    })
    node.#state = 'running'
    return node
  }

  /** The names the node holds outside its directory (the leftover cleanup spares them). */
  get holds() {
    return { container: this.containerId, dir: this.dir, ...this.#names, lease: this.#lease.index }
  }

  /** What the node's owner kept in its record when it was specialized. */
  get owner(): unknown {
    return this.#record.owner
  }

  get state(): NodeState {
    return this.#state
  }

  get process(): NodeProcess | undefined {
    return this.#process
  }

  /** Whether the node runs in its own user namespace (and why not), once specialized. */
  get userNamespace(): NodeUserNamespace | undefined {
    return this.#userNamespace
  }

  async #prepareScratch(signal?: AbortSignal): Promise<void> {
    const fs = join(this.dir, 'fs')
    await mountTmpfs(fs, this.#ctx.scratchBytes, signal)
    for (const dir of ['upper', 'work', 'root', 'lower', 'thaw/worker', 'thaw/run', 'run']) {
      await mkdir(join(fs, dir), { recursive: true })
    }
  }

  /**
   * Lets the host reach a server on the node's 127.0.0.1:`port` at `<ip>:<port>` (see
   * node-network.ts forwardPortToLoopback). Before or after specialize; resolves with its ms.
   */
  async forwardPortToLoopback(port: number, signal?: AbortSignal): Promise<number> {
    if (this.#state === 'destroyed' || this.#state === 'failed') {
      throw new ThawError('NODE_NOT_WARM', `node ${this.id} is ${this.#state}`)
    }
    const t0 = performance.now()
    await forwardPortToLoopback(this.#names.netns, port, signal)
    return performance.now() - t0
  }

  /** Mounts the image, writes config.json and starts the node's process. Once per node. */
  async specialize(o: SpecializeOptions): Promise<NodeProcess> {
    if (this.#state !== 'warm') {
      throw new ThawError('NODE_NOT_WARM', `node ${this.id} is ${this.#state}, not warm`)
    }
    this.#state = 'specializing'
    this.#hasContainer = true
    const signal = o.signal ? AbortSignal.any([o.signal, this.#abort.signal]) : this.#abort.signal
    this.#specializing = this.#specialize({ ...o, signal })
    try {
      this.#process = await this.#specializing
      if (this.#state === 'specializing') this.#state = 'running'
      return this.#process
    } catch (err) {
      if (this.#state === 'specializing') this.#state = 'failed'
      throw err
    }
  }

  async #specialize(o: SpecializeOptions): Promise<NodeProcess> {
    const t0 = performance.now()
    const info = await stat(o.lowerDir).catch(() => undefined)
    if (!info?.isDirectory()) {
      throw new ThawError('LOWER_DIR_MISSING', `image root ${o.lowerDir} is not a directory`)
    }
    const { user, cgroups, userns, host } = await mountNodeRoot({
      fsDir: join(this.dir, 'fs'),
      containerId: this.containerId,
      lowerDir: o.lowerDir,
      lowerDev: info.dev,
      imageUser: o.imageConfig.User,
      range: this.#range,
      usernsFile: this.#range && join(this.dir, 'userns'),
      support: this.#ctx.userNamespaces,
      notIdmappable: this.#ctx.notIdmappable,
      signal: o.signal,
    })
    this.#userNamespace = userns
    const t1 = performance.now()
    await chown(this.runDir, host(user.uid), host(user.gid))
    await chmod(this.runDir, 0o700)
    const capabilities = o.capabilities ?? NODE_CAPABILITIES
    const spec = specializeSpec(this.#template, {
      args: processArgs(o.imageConfig, o.args),
      env: mergeEnv(o.imageConfig.Env, o.env, { home: user.home, hostname: this.containerId }),
      cwd: workingDir(o.imageConfig),
      user,
      memoryBytes: o.memoryBytes,
      limitSwap: await hasMemorySwapLimit(cgroups),
      pids: o.pids,
      cpuMillis: o.cpuMillis ?? NODE_DEFAULT_CPU_MILLIS,
      capabilities,
      seccomp: o.seccomp ?? 'default',
      userNamespace: userns.enabled ? { path: userns.path, range: userns.range } : undefined,
      readOnlyBinds: o.readOnlyBinds,
    })
    // The app's settings are in its env: readable by root only.
    await writeFile(join(this.dir, 'config.json'), JSON.stringify(spec), { mode: 0o600 })
    const t2 = performance.now()
    const started = await startContainer(
      this.#ctx.runtime,
      this.containerId,
      this.dir,
      containerFiles(this.dir),
      { orphanTimeoutSeconds: this.#ctx.orphanTimeoutSeconds, signal: o.signal },
    )
    this.#release = started.release
    if (o.onOutput) started.output.listen(o.onOutput)
    const container = {
      pid: started.pid,
      shim: started.shim,
      cgroups,
      userNamespace: userns.enabled,
    }
    this.#record = { ...this.#record, container, owner: o.owner }
    await writeNodeRecord(this.dir, this.#record)
    const t3 = performance.now()
    const timings = { mountMs: t1 - t0, configMs: t2 - t1, startMs: t3 - t2, totalMs: t3 - t0 }
    return createNodeHandle({
      container: started,
      ip: this.ip,
      cgroups,
      timings,
      destroy: () => this.destroy(),
    })
  }

  /**
   * Kills the process, deletes the container (and its cgroups), unmounts the overlay and the
   * tmpfs, deletes the veth and namespace, frees the /30 and removes the directory. Idempotent
   * and safe in any state, also half-prepared; a failed step is reported after the others ran,
   * and calling again retries what is left.
   */
  destroy(): Promise<void> {
    this.#state = 'destroyed'
    this.#abort.abort(new ThawError('NODE_DESTROYED', `node ${this.id} was destroyed`))
    this.#destroying ??= this.#destroy().catch((err: unknown) => {
      this.#destroying = undefined
      throw err
    })
    return this.#destroying
  }

  async #destroy(): Promise<void> {
    const errors: unknown[] = []
    const step = async (f: () => Promise<unknown>) =>
      f().catch((err: unknown) => void errors.push(err))
    await this.#specializing?.catch(() => {})
    const proc = this.#process
    if (proc) {
      proc.kill('SIGKILL')
      await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 10_000).unref())])
    }
    const storage = async () => {
      // Only a node that was specialized can have a container (the leftover cleanup finds
      // containers of crashed hosts by listing them).
      if (this.#hasContainer) await step(() => this.#ctx.runtime.delete(this.containerId))
      await step(() => unmountAll(this.dir))
    }
    const network = async () => {
      try {
        await destroyNodeNetwork(this.#names)
      } catch (err) {
        errors.push(err)
        return // a /30 whose veth may still exist must not be leased again
      }
      await step(() => releaseSubnet(this.#ctx.leaseDir, this.#lease.index))
    }
    await Promise.all([storage(), network()])
    await this.#release?.() // after the container is deleted: its shim leaves the rest to us
    if ((await mountsUnder(this.dir)).length === 0) {
      await step(() => rm(this.dir, { recursive: true, force: true }))
    }
    if (errors.length === 0) return this.#ctx.onDestroyed?.(this)
    const detail = errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')
    throw new ThawError('NODE_DESTROY_FAILED', `destroying node ${this.id}: ${detail}`, {
      cause: errors[0],
    })
  }
}
