import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { edgeFor, flagProblem, integer, registryCredentials, untilSignal } from './command.ts'
import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import { parseOperatorLimits, type OperatorLimits } from '../apps/operator-limits.ts'
import type { UserNamespacePolicy } from '../sandbox/node-user-namespace.ts'
import { DEFAULT_ORPHAN_TIMEOUT_SECONDS } from '../sandbox/oci-runtime.ts'
import { jsonHostLogger } from '../log/host-logger.ts'
import { DEFAULT_SERVER_LIMITS } from '../server/http-server.ts'
import { startHost } from '../server/start-host.ts'
import { createMounts } from './host-mounts.ts'

const USAGE = `usage: thaw host [options]

Runs the function host: apps are created with the admin API (/admin/apps, master key), each
answers at http://<app>.localhost:<port>/ or http://host:<port>/<app>/, and runs on sandboxed
nodes started from lazily mounted images. Nodes and mounts outlive a host that is killed: the
next host on the same --state adopts the nodes whose app revision is still current; a node
that no host takes back within --orphan-timeout ends itself.

options:
  -p, --port <n>          port to listen on (default 7071)
      --hostname <h>      address to listen on (default 127.0.0.1)
      --edge <url>        registry edge the images come through (repeatable): each is
                          measured (round-trip time, throughput) and the fastest healthy one
                          is tried first, the others in the order given; profiles go to the
                          edge at the image's registry host, else the first
      --pool <n>          warm nodes to keep (default 2)
      --no-profiles       record no start and replay no prefetch bundle: every cold start
                          reads what it needs on demand (default: an app's first cold start of
                          an image is recorded, its profile sent to the edge, and later cold
                          starts replay the bundle the edge lays out by it)
      --state <dir>       state directory: apps, master key, nodes (default ./.thaw-host)
      --master-key <k>    admin key (default: <state>/master.key, made on first start)
      --metrics-key <k>   key that opens /metrics only, as a bearer token (default:
                          <state>/metrics.key, made on first start; the master key works too)
      --max-connections <n>
                          open connections in all (default 4096)
      --max-connections-per-address <n>
                          open connections from one client address, an IPv6 client by its /64
                          (default 256; raise it behind a proxy or load balancer)
      --limits <file>     JSON: what one app may ask for (maxMemoryBytes, maxPids,
                          maxCpuMillis, addableCapabilities, allowUnconfined; host/README.md)
      --user-namespaces <auto|required|off>
                          a user namespace per node where possible (default auto)
      --orphan-timeout <s>
                          how long a node outlives a host that died, waiting for the next
                          host on the same --state, before it ends itself (default 300;
                          0: forever). The setting of the last host that held a node applies
  -h, --help              this help

Registry credentials (for edges and registries with auth on: mounts, prefetch bundles and
profile uploads): THAW_REGISTRY_USERNAME and THAW_REGISTRY_PASSWORD.
`

export interface HostFlags {
  help: boolean
  port: number
  hostname: string
  edges: string[]
  pool: number
  /** false with --no-profiles: no start records or replays. */
  profiles: boolean
  state: string
  masterKey: string | undefined
  metricsKey: string | undefined
  maxConnections: number
  maxConnectionsPerAddress: number
  /** Path of the operator's limits file. */
  limits: string | undefined
  userNamespaces: UserNamespacePolicy
  /** Seconds a node waits for a next host once this one died (0: forever). */
  orphanTimeout: number
}

/** `thaw host`: startHost behind flags; runs until SIGINT/SIGTERM. */
export async function main(argv: string[]): Promise<number> {
  const flags = parseHostFlags(argv)
  if (flags.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const stateDir = resolve(flags.state)
  // Before anything listens: a host without mounts must say so, not start half-working.
  const credentials = registryCredentials()
  const operatorLimits = flags.limits ? await readLimits(flags.limits) : undefined
  const logger = jsonHostLogger()
  const mounts = await createMounts({
    dir: join(stateDir, 'mounts'),
    edges: flags.edges,
    credentials,
    logger,
  })
  const host = await startHost({
    stateDir,
    port: flags.port,
    hostname: flags.hostname,
    warm: flags.pool,
    mounts,
    masterKey: flags.masterKey,
    metricsKey: flags.metricsKey,
    server: {
      maxConnections: flags.maxConnections,
      maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
    },
    operatorLimits,
    // Nodes outlive a host that is killed; the next host on the same state adopts them.
    sandbox: {
      userNamespaces: flags.userNamespaces,
      keepNodes: true,
      orphanTimeoutSeconds: flags.orphanTimeout,
    },
    edgeFor: (registry) => edgeFor(flags.edges, registry),
    credentials,
    profiles: flags.profiles,
    // An app's timers run without a request: a node is started ahead of traffic to learn them.
    syncTriggers: true,
    logger,
  }).catch(async (err: unknown) => {
    await mounts.close()
    throw err
  })
  process.stdout.write(`thaw host listening on ${host.url} (state ${stateDir})\n`)
  await untilSignal()
  await host.close()
  return 0
}

export function parseHostFlags(argv: string[]): HostFlags {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        port: { type: 'string', short: 'p' },
        hostname: { type: 'string' },
        edge: { type: 'string', multiple: true },
        pool: { type: 'string' },
        'no-profiles': { type: 'boolean' },
        state: { type: 'string' },
        'master-key': { type: 'string' },
        'metrics-key': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-address': { type: 'string' },
        limits: { type: 'string' },
        'user-namespaces': { type: 'string' },
        'orphan-timeout': { type: 'string' },
      },
    }))
  } catch (err) {
    throw bad(flagProblem('host', err))
  }
  const port = integer('--port', values.port ?? '7071', 0, 65535)
  const pool = integer('--pool', values.pool ?? '2', 0, 1000)
  const edges = (values.edge ?? []).map((e) => {
    if (!URL.canParse(e) || !/^https?:$/.test(new URL(e).protocol))
      throw bad(`--edge must be an http(s) URL, not "${e}"`)
    return e
  })
  const masterKey = values['master-key']
  if (masterKey !== undefined && masterKey.length < 16)
    throw bad('--master-key must be at least 16 characters')
  const metricsKey = values['metrics-key']
  if (metricsKey !== undefined && !/^\S{16,}$/.test(metricsKey))
    throw bad('--metrics-key must be at least 16 characters, none of them spaces')
  const limits = DEFAULT_SERVER_LIMITS
  const maxConnections = integer(
    '--max-connections',
    values['max-connections'] ?? String(limits.maxConnections),
    1,
    1_000_000,
  )
  const maxConnectionsPerAddress = integer(
    '--max-connections-per-address',
    values['max-connections-per-address'] ?? String(limits.maxConnectionsPerAddress),
    1,
    1_000_000,
  )
  const userNamespaces = values['user-namespaces'] ?? 'auto'
  if (!['auto', 'required', 'off'].includes(userNamespaces))
    throw bad(`--user-namespaces must be auto, required or off, not "${userNamespaces}"`)
  const orphanTimeout = integer(
    '--orphan-timeout',
    values['orphan-timeout'] ?? String(DEFAULT_ORPHAN_TIMEOUT_SECONDS),
    0,
    365 * 24 * 3600,
  )
  return {
    help: values.help ?? false,
    port,
    hostname: values.hostname ?? '127.0.0.1',
    edges,
    pool,
    profiles: !values['no-profiles'],
    state: values.state ?? '.thaw-host',
    masterKey,
    metricsKey,
    maxConnections,
    maxConnectionsPerAddress,
    limits: values.limits,
    userNamespaces: userNamespaces as UserNamespacePolicy,
    orphanTimeout,
  }
}

/** The operator's limits file (JSON; OPERATOR_LIMITS_INVALID names each bad field). */
async function readLimits(file: string): Promise<OperatorLimits> {
  let value: unknown
  try {
    value = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw bad(`--limits ${file}: ${(err as Error).message}`)
  }
  return parseOperatorLimits(value)
}

const bad = (message: string) => new ThawError('OPTIONS_INVALID', message, { fault: 'user' })
