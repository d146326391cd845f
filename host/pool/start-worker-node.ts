import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { WorkerEnv } from '../../runtime/protocol/worker-contract.ts'
import type { FunctionInfo, ReadyMessage } from '../../runtime/protocol/worker-messages.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { MountLease } from '../mount/image-mounts.ts'
import { parseBodyLimits } from '../request-body/index.ts'
import type { HttpFunctionSpec } from '../router/index.ts'
import { NODE_PATHS } from '../sandbox/node-spec.ts'
import type { NodeExit, NodeProcess } from '../sandbox/node-handle.ts'
import type { SandboxNode, SpecializeOptions } from '../sandbox/sandbox-node.ts'
import { listenControl } from '../worker/control-server.ts'
import { createWorkerClient, type WorkerClient } from '../worker/worker-client.ts'
import { readImageAppConfig, type ImageAppConfig } from './app-config-in-image.ts'
import type { NodeLog } from './node-log.ts'
import { adoptCustomHandlerNode, startCustomHandlerNode } from './start-custom-handler-node.ts'
import { startFailed, untilReady } from './until-ready.ts'

/** The bundled worker's file name inside the worker directory (bound at /.thaw/worker). */
export const WORKER_FILE = 'worker.mjs'

/** What an app's limits say about its nodes' CPU and privileges (pool.ts nodePrivileges). */
export type NodePrivileges = Required<
  Pick<SpecializeOptions, 'cpuMillis' | 'capabilities' | 'seccomp'>
>

export interface StartWorkerNodeOptions {
  node: SandboxNode
  lease: MountLease
  appName: string
  settings: Record<string, string>
  memoryBytes: number
  pids: number
  privileges?: NodePrivileges
  logger: HostLogger
  /** The app's log (host/logs), records of this node. */
  log: NodeLog
  /** Kept in the node's record (sandbox/node-record.ts), for a next host to adopt the node. */
  owner?: unknown
  signal: AbortSignal
}

/** How often a node's worker tries to reach its host again after the host went away. */
export const CONTROL_RECONNECT_MS = 250

/** An app running on a specialized node, ready for requests. */
export interface RunningApp {
  readonly process: NodeProcess
  readonly client: WorkerClient
  readonly functions: HttpFunctionSpec[]
  /** Every function the app registered, HTTP or not (timers, admin invoke). */
  readonly allFunctions: FunctionInfo[]
  readonly routePrefix: string
  readonly customHeaders: Record<string, string>
  /** Sandbox start (overlay, config, runtime) and app load (process start → ready), ms. */
  readonly timings: { sandboxMs: number; loadMs: number }
  /** Resolves when the node's process is gone (never rejects). */
  readonly exited: Promise<NodeExit>
  /** Closes the control channel and the client (the node itself is destroyed by its owner). */
  close(): Promise<void>
}

/**
 * Specializes a warm node for an `@azure/functions` app: the lease's root as the overlay's
 * read-only lower, the image's user and env plus the app's settings, and the worker
 * (`node /.thaw/worker/worker.mjs`, run by the image's own node) started with its control
 * socket and invocation socket in the node's /.thaw/run, which the host sees at node.runDir.
 * Resolves at the worker's `ready`; rejects with NODE_START_FAILED on `fatal`, exit or abort.
 * Images whose host.json has a customHandler section go to startCustomHandlerNode instead.
 */
export async function startWorkerNode(o: StartWorkerNodeOptions): Promise<RunningApp> {
  const image = o.lease.image
  const app = await readImageAppConfig(o.lease.root, image.config)
  // A custom handler may be written in any language: no worker, the image's own process.
  if (app.customHandler)
    return startCustomHandlerNode(o, { ...app, customHandler: app.customHandler })
  const config = image.config.config ?? {}
  const entry = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
  const runsWorker = entry.some((a) => a.startsWith(`${NODE_PATHS.worker}/`))
  return attachWorker(o, app, () =>
    o.node.specialize({
      lowerDir: o.lease.root,
      imageConfig: config,
      env: {
        ...o.settings,
        // The limit the host enforces, so the worker's own check (a second line) agrees with it.
        [WorkerEnv.bodyLimit]: String(parseBodyLimits(o.settings, o).limits.maxBytes),
        [WorkerEnv.control]: `${NODE_PATHS.run}/c.sock`,
        [WorkerEnv.listen]: `${NODE_PATHS.run}/w.sock`,
        [WorkerEnv.scriptRoot]: app.scriptRoot,
        // The node outlives a host that dies, and talks to the next one (adoptWorkerNode).
        [WorkerEnv.controlReconnect]: String(CONTROL_RECONNECT_MS),
        // The host has each answer's status and duration: only failures (their error) are told.
        [WorkerEnv.invocationEvents]: 'failed',
      },
      // Images built by `thaw deploy` name the worker themselves; others get it with their node.
      args: runsWorker ? undefined : ['node', `${NODE_PATHS.worker}/${WORKER_FILE}`],
      memoryBytes: o.memoryBytes,
      pids: o.pids,
      ...o.privileges,
      onOutput: (stream, chunk) => o.log.output(stream, chunk),
      owner: o.owner,
      signal: o.signal,
    }),
  )
}

/**
 * Takes over a node a host that died left running (sandbox takeKept): its worker connects to
 * this host's control socket at the same path, says hello and ready again, and serves on its
 * invocation socket as before; a custom handler serves on its port as before
 * (adoptCustomHandlerNode). The node's output goes on to the app's log from where the dead host
 * stopped reading its output files. Rejects as startWorkerNode does, e.g. when the worker does
 * not come back before `signal` ends.
 */
export async function adoptWorkerNode(
  o: Omit<StartWorkerNodeOptions, 'owner'>,
  proc: NodeProcess,
): Promise<RunningApp> {
  const app = await readImageAppConfig(o.lease.root, o.lease.image.config)
  const output = proc.output()
  for (const stream of ['stdout', 'stderr'] as const) {
    if (output[stream]) o.log.output(stream, Buffer.from(output[stream]))
  }
  proc.onOutput((stream, chunk) => o.log.output(stream, chunk))
  if (app.customHandler) {
    return adoptCustomHandlerNode(o, { ...app, customHandler: app.customHandler }, proc)
  }
  return attachWorker(o, app, async () => proc)
}

/**
 * The host's side of a worker: its control socket (listening before `start` runs the node), its
 * messages to the app's log, the wait for ready, and the client on its invocation socket.
 */
async function attachWorker(
  o: Pick<StartWorkerNodeOptions, 'node' | 'log' | 'signal'>,
  app: ImageAppConfig,
  start: () => Promise<NodeProcess>,
): Promise<RunningApp> {
  const control = await listenControl(join(o.node.runDir, 'c.sock'))
  await chmod(control.path, 0o666) // the worker may run as any user of the image
  let ready!: (m: ReadyMessage) => void
  let fatal!: (e: Error) => void
  const readyOrFatal = new Promise<ReadyMessage>((resolve, reject) => {
    ready = resolve
    fatal = reject
  })
  control.onMessage((m) => {
    if (m.type === 'ready') ready(m)
    else if (m.type === 'fatal') fatal(startFailed(`the app failed to load: ${m.message}`))
    else if (m.type === 'log') o.log.worker(m)
    else if (m.type === 'invocation-end') o.log.invocationEnd(m)
  })
  let proc: NodeProcess
  try {
    proc = await start()
  } catch (err) {
    await control.close()
    throw err
  }
  const specialized = performance.now()
  try {
    const message = await untilReady(readyOrFatal, proc, o.signal)
    const loadMs = performance.now() - specialized
    const client = createWorkerClient(join(o.node.runDir, 'w.sock'))
    return {
      process: proc,
      client,
      functions: message.functions.filter((f) => f.trigger === 'httpTrigger').map(toSpec),
      allFunctions: message.functions,
      routePrefix: app.routePrefix,
      customHeaders: app.customHeaders,
      timings: { sandboxMs: proc.timings.totalMs, loadMs },
      exited: proc.exited,
      async close() {
        await Promise.allSettled([client.destroy(), control.close()])
      },
    }
  } catch (err) {
    await control.close()
    throw err
  }
}

function toSpec(f: FunctionInfo): HttpFunctionSpec {
  return {
    name: f.name,
    route: f.route,
    methods: f.methods,
    authLevel: f.authLevel ?? 'function',
  }
}
