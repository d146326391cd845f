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
import { createNodeLog } from './node-log.ts'
import type { ProfileTracker } from './profile-tracker.ts'
import { startWorkerNode, type NodePrivileges } from './start-worker-node.ts'
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
  return {
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
  try {
    const running = await startWorkerNode({
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
    })
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
        o.profiles.firstResponse(app.image, lease)
      },
      destroy: () =>
        (destroying ??= (async () => {
          if (!responded) o.profiles.abandoned(app.image, workload)
          await running.close()
          await destroyBoth(node, lease)
        })()),
    }
  } catch (err) {
    log.host('error', `the node could not start the app: ${(err as Error).message}`)
    await destroyBoth(node, lease)
    throw err
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
