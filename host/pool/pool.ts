import { z } from 'zod'
import type { App, AppLimits } from '../apps/app-spec.ts'
import {
  checkOperatorLimits,
  defaultOperatorLimits,
  type OperatorLimits,
} from '../apps/operator-limits.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AppLogs } from '../logs/app-logs.ts'
import type { ImageMounts, MountLease } from '../mount/image-mounts.ts'
import { NODE_CAPABILITIES } from '../sandbox/capabilities.ts'
import type { SandboxNode } from '../sandbox/sandbox-node.ts'
import { ThawError } from '../../runtime/errors.ts'
import { sameRuntime } from '../apps/revision.ts'
import type { HttpFunctionSpec } from '../router/index.ts'
import {
  AppNodes,
  type AppNodesStatus,
  type PoolNode,
  type StartBackoff,
  type StartedNode,
} from './app-nodes.ts'
import { collectStartLogs, withStartLogs } from './start-logs.ts'
import type { PoolNodeState } from './node-state.ts'
import { createNodeLog, type NodeLog } from './node-log.ts'
import type { ProfileTracker } from './profile-tracker.ts'
import {
  adoptWorkerNode,
  startWorkerNode,
  type NodePrivileges,
  type RunningApp,
} from './start-worker-node.ts'
import { createWarmPool, type NodePreparer, type WarmPool } from './warm-pool.ts'

export interface PoolOptions {
  sandbox: NodePreparer
  mounts: ImageMounts
  profiles: ProfileTracker
  /** Warm nodes kept ready. */
  warm: number
  /** Checked again at every cold start: the operator may have lowered them. Default: defaults. */
  operatorLimits?: OperatorLimits
  logger: HostLogger
  /** The apps' logs: what nodes print and log, failed invocations, failed starts. */
  logs: AppLogs
  onNodeState?: (app: string, node: PoolNode, from: PoolNodeState, to: PoolNodeState) => void
  /** Of failing starts (app-nodes.ts DEFAULT_START_BACKOFF). */
  backoff?: StartBackoff
  /** A node of the app is ready, with these functions (the host's timers learn them here). */
  onStarted?: (app: App, node: StartedNode) => void
}

/** What `adopt` did with each node a dead host left: by pool node id, or the sandbox's. */
export interface AdoptReport {
  adopted: string[]
  /** Node → why it was destroyed instead (revision superseded, mount gone, worker gone, …). */
  destroyed: Record<string, string>
}

/**
 * What the pool keeps in a node's record (sandbox/node-record.ts `owner`): enough for a next host
 * to decide whether the node may serve again, and to find its mount.
 */
const nodeOwner = z
  .object({
    app: z.string(),
    revision: z.number().int(),
    node: z.string(),
    image: z.string(),
    mount: z.string(),
    workload: z.string(),
  })
  .strict()
type NodeOwner = z.infer<typeof nodeOwner>

/** How long an adopted node's worker has to come back (it retries every 250 ms). */
const ADOPT_TIMEOUT_MS = 30_000

export interface PoolStatus {
  warm: { ready: number; target: number }
  apps: Record<string, AppNodesStatus & { image: string }>
}

/** A node of a new revision, started and loaded apart from the app's serving nodes. */
export interface PreparedRevision {
  readonly functions: HttpFunctionSpec[]
  readonly routePrefix: string
  /** Stops the prepared node (its revision was not stored after all). Idempotent. */
  discard(): Promise<void>
}

export interface Pool {
  /**
   * The scheduler of `app` (made on first use). A revision that runs differently (image,
   * settings, limits) switches to the nodes `prepare` started for it, else to new ones; the old
   * nodes drain (in-flight requests finish) and what waits on them moves to the new ones.
   */
  nodesOf(app: App): AppNodes
  /**
   * The health gate of a rollout: starts one node of `app` and loads its functions without
   * touching the nodes that serve. Resolves when it is ready (`nodesOf(app)` then takes it);
   * rejects with the start's error, whose `logs` (startLogsOf) are the node's lines.
   */
  prepare(app: App): Promise<PreparedRevision>
  /** Drains the app's nodes (it was removed or changed). */
  forget(name: string): Promise<void>
  /**
   * Takes over the nodes a host that died left running (sandbox takeKept): a node whose app
   * still runs the revision it was started for, and whose image mount this host serves again
   * (mounts.adoptLease), serves as one of the app's ready nodes (its first request is not a cold
   * start); every other node is destroyed. Resolves when each is one or the other.
   */
  adopt(nodes: SandboxNode[], appOf: (name: string) => App | undefined): Promise<AdoptReport>
  status(): PoolStatus
  readonly warmPool: WarmPool
  /** Drains every app, destroys the warm nodes. Idempotent. */
  close(): Promise<void>
}

/**
 * The host's nodes: the warm pool, and per app an AppNodes scheduler whose cold starts take a
 * warm node and specialize it (startNode below).
 */
export function createPool(o: PoolOptions): Pool {
  const warmPool = createWarmPool({ sandbox: o.sandbox, target: o.warm, logger: o.logger })
  const apps = new Map<string, { app: App; nodes: AppNodes }>()
  /** Prepared revisions' nodes, by app, until nodesOf switches to them. */
  const staged = new Map<string, { app: App; nodes: AppNodes }>()
  let closing: Promise<void> | undefined
  const forget = async (name: string) => {
    const entry = apps.get(name)
    apps.delete(name)
    const prepared = staged.get(name)
    staged.delete(name)
    await Promise.all([entry?.nodes.close(), prepared?.nodes.close()])
  }
  const nodesFor = (app: App) =>
    new AppNodes(app.name, {
      limits: () => app.limits,
      start: async (id, signal, fn) => {
        const started = await startNode(o, warmPool, app, id, signal, fn)
        o.onStarted?.(app, started)
        return started
      },
      logger: o.logger,
      onState: (node, from, to) => o.onNodeState?.(app.name, node, from, to),
      backoff: o.backoff,
    })
  const pool: Pool = {
    warmPool,
    nodesOf(app) {
      const entry = apps.get(app.name)
      // The same revision object (every request between two deploys) needs no comparison.
      if (entry && (entry.app === app || sameRuntime(entry.app, app))) {
        entry.app = app // keys may have changed: they are checked at the door, not in the node
        return entry.nodes
      }
      const prepared = staged.get(app.name)
      const next =
        prepared && sameRuntime(prepared.app, app) ? prepared : { app, nodes: nodesFor(app) }
      if (next === prepared) staged.delete(app.name)
      apps.set(app.name, next)
      void entry?.nodes.close(next.nodes)
      return next.nodes
    },
    async prepare(app) {
      if (closing) throw new ThawError('HOST_CLOSING', 'the host is closing')
      const nodes = nodesFor(app)
      let started: StartedNode
      try {
        started = await nodes.startOne()
      } catch (err) {
        await nodes.close()
        throw err
      }
      const entry = { app, nodes }
      const earlier = staged.get(app.name)
      staged.set(app.name, entry)
      if (earlier) void earlier.nodes.close()
      return {
        functions: started.functions,
        routePrefix: started.routePrefix,
        async discard() {
          if (staged.get(app.name) === entry) staged.delete(app.name)
          if (apps.get(app.name) !== entry) await nodes.close()
        },
      }
    },
    forget,
    async adopt(nodes, appOf) {
      const report: AdoptReport = { adopted: [], destroyed: {} }
      await Promise.all(
        nodes.map(async (node) => {
          const owner = nodeOwner.safeParse(node.owner)
          const app = owner.success ? appOf(owner.data.app) : undefined
          const name = owner.success ? owner.data.node : node.id
          try {
            if (!owner.success) throw new Error('its record names no app')
            if (!app) throw new Error(`app ${owner.data.app} is gone`)
            if (app.revision !== owner.data.revision) {
              throw new Error(`revision ${owner.data.revision} is superseded by ${app.revision}`)
            }
            const started = await adoptNode(o, app, node, owner.data)
            pool.nodesOf(app).adopt(started)
            report.adopted.push(name)
            o.logger.log('info', 'node adopted from a host that died', {
              app: app.name,
              node: name,
            })
          } catch (err) {
            report.destroyed[name] = (err as Error).message
            o.logger.log('info', `node of a host that died removed: ${(err as Error).message}`, {
              node: name,
            })
            await node.destroy().catch(() => {})
          }
        }),
      )
      return report
    },
    status() {
      const out: PoolStatus['apps'] = {}
      for (const [name, { app, nodes }] of apps) out[name] = { image: app.image, ...nodes.status() }
      return { warm: { ready: warmPool.size, target: warmPool.target }, apps: out }
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...new Set([...apps.keys(), ...staged.keys()])].map(forget))
        await warmPool.close()
      })()
      return closing
    },
  }
  return pool
}

/**
 * One cold start: acquire the image's mount lease (recording or replaying), take a warm node,
 * specialize it with the lease root as the read-only lower and start the worker, wait for
 * ready. Every resource taken is given back if a later step fails. The workload recorded and
 * replayed is the app's, or `<app>/<function>` when the start is for a request to one function.
 */
async function startNode(
  o: PoolOptions,
  warmPool: WarmPool,
  app: App,
  id: string,
  signal: AbortSignal,
  fn?: string,
): Promise<StartedNode> {
  const seen = collectStartLogs(o.logger)
  try {
    return await startNodeLogged(o, warmPool, app, id, signal, seen.logger, fn)
  } catch (err) {
    throw withStartLogs(err, seen.lines())
  } finally {
    seen.stop()
  }
}

async function startNodeLogged(
  o: PoolOptions,
  warmPool: WarmPool,
  app: App,
  id: string,
  signal: AbortSignal,
  logger: HostLogger,
  fn?: string,
): Promise<StartedNode> {
  checkOperatorLimits(app.name, app.limits, o.operatorLimits ?? defaultOperatorLimits())
  const workload = fn === undefined ? app.name : `${app.name}/${fn}`
  const options = { ...o.profiles.acquireOptions(app.image, workload), signal }
  // The mount and the warm node side by side; if one fails, the other is given back.
  const [leased, taken] = await Promise.allSettled([
    o.mounts.acquire(app.image, options),
    warmPool.take(signal),
  ])
  if (leased.status === 'rejected' || taken.status === 'rejected') {
    if (leased.status === 'fulfilled') await leased.value.release()
    if (taken.status === 'fulfilled') await taken.value.destroy().catch(() => {})
    throw leased.status === 'rejected' ? leased.reason : (taken as PromiseRejectedResult).reason
  }
  const [lease, node] = [leased.value, taken.value]
  o.profiles.acquired(app.image, lease, options)
  const log = createNodeLog(o.logs, app.name, id, { revision: app.revision, logger })
  const owner: NodeOwner = {
    app: app.name,
    revision: app.revision,
    node: id,
    image: app.image,
    mount: lease.root,
    workload,
  }
  try {
    const running = await startWorkerNode({
      ...appNodeOptions(app, node, lease, log, logger, signal),
      owner,
    })
    return startedNode(id, node, lease, running, {
      firstResponse: () => o.profiles.firstResponse(app.image, lease),
      abandoned: () => o.profiles.abandoned(app.image, workload),
    })
  } catch (err) {
    log.host('error', `the node could not start the app: ${(err as Error).message}`)
    await destroyBoth(node, lease)
    throw err
  }
}

/** A node a dead host left, attached to again: its mount's lease, its worker's channels. */
async function adoptNode(
  o: PoolOptions,
  app: App,
  node: SandboxNode,
  owner: NodeOwner,
): Promise<StartedNode> {
  const proc = node.process
  if (!proc) throw new Error('it has no process')
  const lease = await o.mounts.adoptLease?.(owner.mount)
  if (!lease) throw new Error(`its image mount ${owner.mount} is gone`)
  const log = createNodeLog(o.logs, app.name, owner.node, {
    revision: app.revision,
    logger: o.logger,
  })
  try {
    const signal = AbortSignal.timeout(ADOPT_TIMEOUT_MS)
    const running = await adoptWorkerNode(
      appNodeOptions(app, node, lease, log, o.logger, signal),
      proc,
    )
    log.host('info', 'node adopted from a host that died')
    // Its start was recorded (or not) by the host that died: nothing is recorded now.
    return startedNode(owner.node, node, lease, running, {
      firstResponse: () => {},
      abandoned: () => {},
    })
  } catch (err) {
    await lease.release()
    throw err
  }
}

function appNodeOptions(
  app: App,
  node: SandboxNode,
  lease: MountLease,
  log: NodeLog,
  logger: HostLogger,
  signal: AbortSignal,
) {
  return {
    node,
    lease,
    appName: app.name,
    settings: app.settings,
    memoryBytes: app.limits.memoryBytes,
    pids: app.limits.pids,
    privileges: nodePrivileges(app.limits),
    logger,
    log,
    signal,
  }
}

/** The scheduler's view of a running node; destroy gives back the node and its lease. */
function startedNode(
  id: string,
  node: SandboxNode,
  lease: MountLease,
  running: RunningApp,
  profile: { firstResponse(): void; abandoned(): void },
): StartedNode {
  let destroying: Promise<void> | undefined
  let responded = false
  return {
    id,
    client: running.client,
    functions: running.functions,
    allFunctions: running.allFunctions,
    routePrefix: running.routePrefix,
    customHeaders: running.customHeaders,
    timings: {
      resolve: lease.timings.resolveMs,
      mount: lease.timings.mountMs,
      prefetch: lease.timings.prefetchMs,
      sandbox: running.timings.sandboxMs,
      load: running.timings.loadMs,
    },
    fetched: () => lease.fetched(),
    exited: running.exited,
    firstResponse: () => {
      responded = true
      profile.firstResponse()
    },
    destroy: () =>
      (destroying ??= (async () => {
        if (!responded) profile.abandoned()
        await running.close()
        await destroyBoth(node, lease)
      })()),
  }
}

/** An app's node: thaw's minimal capabilities plus what it adds, its CPU, its seccomp filter. */
export function nodePrivileges(limits: AppLimits): NodePrivileges {
  const capabilities = [...new Set([...NODE_CAPABILITIES, ...limits.addCapabilities])]
  return { cpuMillis: limits.cpuMillis, capabilities, seccomp: limits.seccomp }
}

async function destroyBoth(node: SandboxNode, lease: MountLease): Promise<void> {
  // The node's overlay sits on the lease's root: the node goes first.
  await node.destroy().catch(() => {})
  await lease.release()
}
