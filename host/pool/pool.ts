import type { App, AppLimits } from '../apps/app-spec.ts'
import {
  checkOperatorLimits,
  defaultOperatorLimits,
  type OperatorLimits,
} from '../apps/operator-limits.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { ImageMounts, MountLease } from '../mount/image-mounts.ts'
import { NODE_CAPABILITIES } from '../sandbox/capabilities.ts'
import type { SandboxNode } from '../sandbox/sandbox-node.ts'
import { AppNodes, type AppNodesStatus, type PoolNode, type StartedNode } from './app-nodes.ts'
import type { PoolNodeState } from './node-state.ts'
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
  onNodeState?: (app: string, node: PoolNode, from: PoolNodeState, to: PoolNodeState) => void
}

export interface PoolStatus {
  warm: { ready: number; target: number }
  apps: Record<string, AppNodesStatus & { image: string }>
}

export interface Pool {
  /** The scheduler of `app` (made on first use, remade when its image or limits change). */
  nodesOf(app: App): AppNodes
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
  let closing: Promise<void> | undefined
  const forget = async (name: string) => {
    const entry = apps.get(name)
    apps.delete(name)
    await entry?.nodes.close()
  }
  return {
    warmPool,
    nodesOf(app) {
      const entry = apps.get(app.name)
      if (entry && entry.app.updatedAt === app.updatedAt) return entry.nodes
      if (entry) void forget(app.name)
      const nodes = new AppNodes(app.name, {
        limits: () => app.limits,
        start: (id, signal) => startNode(o, warmPool, app, id, signal),
        logger: o.logger,
        onState: (node, from, to) => o.onNodeState?.(app.name, node, from, to),
      })
      apps.set(app.name, { app, nodes })
      return nodes
    },
    forget,
    status() {
      const out: PoolStatus['apps'] = {}
      for (const [name, { app, nodes }] of apps) out[name] = { image: app.image, ...nodes.status() }
      return { warm: { ready: warmPool.size, target: warmPool.target }, apps: out }
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...apps.keys()].map(forget))
        await warmPool.close()
      })()
      return closing
    },
  }
}

/**
 * One cold start: acquire the image's mount lease (recording or replaying), take a warm node,
 * specialize it with the lease root as the read-only lower and start the worker, wait for
 * ready. Every resource taken is given back if a later step fails.
 */
async function startNode(
  o: PoolOptions,
  warmPool: WarmPool,
  app: App,
  id: string,
  signal: AbortSignal,
): Promise<StartedNode> {
  checkOperatorLimits(app.name, app.limits, o.operatorLimits ?? defaultOperatorLimits())
  const options = { ...o.profiles.acquireOptions(app.image), signal }
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
  try {
    const running = await startWorkerNode({
      node,
      lease,
      appName: app.name,
      settings: app.settings,
      memoryBytes: app.limits.memoryBytes,
      pids: app.limits.pids,
      privileges: nodePrivileges(app.limits),
      logger: o.logger,
      signal,
    })
    let destroying: Promise<void> | undefined
    return {
      id,
      client: running.client,
      functions: running.functions,
      routePrefix: running.routePrefix,
      timings: {
        resolve: lease.timings.resolveMs,
        mount: lease.timings.mountMs,
        prefetch: lease.timings.prefetchMs,
        sandbox: running.timings.sandboxMs,
        load: running.timings.loadMs,
      },
      fetched: () => lease.fetched(),
      exited: running.exited,
      firstResponse: () => o.profiles.firstResponse(app.image, lease),
      destroy: () =>
        (destroying ??= (async () => {
          await running.close()
          await destroyBoth(node, lease)
        })()),
    }
  } catch (err) {
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
