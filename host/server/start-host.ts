import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { bundleWorker } from '../../runtime/worker/bundle.ts'
import { openAppStore, type AppStore } from '../apps/app-store.ts'
import type { OperatorLimits } from '../apps/operator-limits.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { ImageMounts } from '../mount/image-mounts.ts'
import type { CredentialsOption } from '../../runtime/oci/remote/index.ts'
import { createPool, type Pool } from '../pool/pool.ts'
import { createProfileTracker, type ProfileTracker } from '../pool/profile-tracker.ts'
import { WORKER_FILE } from '../pool/start-worker-node.ts'
import { generateKey } from '../router/index.ts'
import { createSandbox, type Sandbox, type SandboxOptions } from '../sandbox/sandbox.ts'
import { AppLogs } from '../logs/app-logs.ts'
import type { RingBounds } from '../logs/log-ring.ts'
import { createHost, type Host } from './create-host.ts'
import { EdgeStats } from './dashboard/edge-stats.ts'
import { startHostTimers, type HostTimers } from './host-timers.ts'
import { HostMetrics } from './host-metrics.ts'
import type { ServerLimits } from './http-server.ts'

export interface StartHostOptions {
  /** apps.json, master.key, the worker, the sandbox's node directories. */
  stateDir: string
  port?: number
  hostname?: string
  /** Warm nodes to keep. Default 2. */
  warm?: number
  /** The lazy mounts (host/mount createImageMounts; tests may pass a double). Closed by close(). */
  mounts: ImageMounts
  /** Default: `<stateDir>/master.key`, made on first start. */
  masterKey?: string
  /** Opens `/metrics` only (scrapers). Default: `<stateDir>/metrics.key`, made at first start. */
  metricsKey?: string
  /** Deadlines and connection caps of the HTTP server (server/http-server.ts). */
  server?: Partial<ServerLimits>
  domain?: string
  /** Base URL of the edge that takes profiles for a registry host (default http://<registry>). */
  edgeFor?: (registry: string) => string
  /** For edges with auth on: profile uploads (the mounts get their own). */
  credentials?: CredentialsOption
  /**
   * Record an app's first cold start per image, upload the profile to the edge and replay its
   * prefetch bundle in later cold starts (default true). False: nothing is recorded or replayed.
   */
  profiles?: boolean
  sandbox?: Omit<SandboxOptions, 'stateDir' | 'workerDir'>
  /**
   * Start one node of an app after it is created or changed, to learn its functions, so its
   * timers run without a request (host-timers.ts). Default false: timers are known from an
   * app's first node on. `thaw host` turns it on.
   */
  syncTriggers?: boolean
  /** Bounds of each app's log ring (logs/app-logs.ts DEFAULT_RING_BOUNDS). */
  logBounds?: Partial<RingBounds>
  /** What an app may ask for (apps/operator-limits.ts). Default: defaultOperatorLimits(). */
  operatorLimits?: OperatorLimits
  logger: HostLogger
}

export interface RunningHost {
  url: string
  masterKey: string
  metricsKey: string
  host: Host
  apps: AppStore
  pool: Pool
  profiles: ProfileTracker
  logs: AppLogs
  timers: HostTimers
  sandbox: Sandbox
  metrics: HostMetrics
  /** Idempotent: the server, the nodes, the sandbox, the mounts. */
  close(): Promise<void>
}

/** Everything `thaw host` runs, composed from its factories and listening. */
export async function startHost(o: StartHostOptions): Promise<RunningHost> {
  const stateDir = resolve(o.stateDir)
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  const masterKey = o.masterKey ?? (await keyIn(stateDir, 'master.key'))
  const metricsKey = o.metricsKey ?? (await keyIn(stateDir, 'metrics.key'))
  const workerDir = await installWorker(stateDir)
  const apps = await openAppStore(stateDir, { operatorLimits: o.operatorLimits })
  const sandbox = await createSandbox({
    ...o.sandbox,
    stateDir: join(stateDir, 'sandbox'),
    workerDir,
  })
  const metrics = new HostMetrics()
  metrics.watchEdges(() => o.mounts.edges?.() ?? [])
  const profiles = createProfileTracker({
    logger: o.logger,
    edgeFor: o.edgeFor,
    credentials: o.credentials,
    enabled: o.profiles,
  })
  const logs = await AppLogs.open(join(stateDir, 'logs'), { ...o.logBounds, logger: o.logger })
  for (const app of logs.apps()) if (!apps.get(app)) logs.forget(app) // deleted meanwhile
  let timers: HostTimers | undefined
  const pool = createPool({
    sandbox,
    mounts: o.mounts,
    profiles,
    warm: o.warm ?? 2,
    operatorLimits: o.operatorLimits,
    logger: o.logger,
    logs,
    onNodeState: (_app, _node, from, to) => metrics.nodeState(from, to),
    onStarted: (app, node) => timers?.learned(app, node.allFunctions),
  })
  const host = createHost({
    apps,
    pool,
    mounts: o.mounts,
    profiles,
    metrics,
    masterKey,
    metricsKey,
    server: o.server,
    domain: o.domain,
    edges: new EdgeStats({ edgeFor: o.edgeFor, credentials: o.credentials }),
    logger: o.logger,
    logs,
  })
  let url: string
  try {
    // Nodes a host that died left running (sandbox keepNodes) serve again, or go, before traffic.
    const kept = sandbox.takeKept()
    if (kept.length > 0) {
      const report = await pool.adopt(kept, (name) => apps.get(name))
      o.logger.log('info', 'nodes of a host that died', { ...report })
    }
    url = (await host.listen(o.port ?? 7071, o.hostname)).url
    timers = await startHostTimers({
      stateDir,
      apps,
      pool,
      logs,
      syncTriggers: o.syncTriggers ?? false,
    })
  } catch (err) {
    await host.close()
    await sandbox.close()
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    url,
    masterKey,
    metricsKey,
    host,
    apps,
    pool,
    profiles,
    logs,
    timers,
    sandbox,
    metrics,
    close: () =>
      (closing ??= (async () => {
        timers.close()
        await host.close()
        await sandbox.close()
        await o.mounts.close()
        await profiles.close()
        await logs.settled()
      })()),
  }
}

/** A key kept in `<stateDir>/<name>` (mode 0600), made on first start. */
async function keyIn(stateDir: string, name: string): Promise<string> {
  const file = join(stateDir, name)
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const key = generateKey()
    await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(() => {})
    return (await readFile(file, 'utf8')).trim()
  }
}

/** The bundled worker, in a directory every node user can read (bound at /.thaw/worker). */
async function installWorker(stateDir: string): Promise<string> {
  const dir = join(stateDir, 'worker')
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  await chmod(stateDir, 0o711) // nodes' users must traverse to the worker, not list the state
  const file = join(dir, WORKER_FILE)
  await copyFile(await bundleWorker(), file)
  await chmod(file, 0o644)
  return dir
}
