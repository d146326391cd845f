import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import { readDockerConfig } from '../../runtime/oci/remote/docker-config.ts'
import { jsonHostLogger } from '../log/host-logger.ts'
import { createImageMounts } from '../mount/create-image-mounts.ts'
import { FuseKeeper } from '../fuse/fuse-keeper.ts'
import { createProfileTracker } from '../pool/profile-tracker.ts'
import { Snapshotter } from '../snapshotter/snapshotter.ts'
import {
  parseSnapshotterConfig,
  readSnapshotterConfig,
  type SnapshotterConfig,
} from '../snapshotter/snapshotter-config.ts'
import { SnapshotterMetrics } from '../snapshotter/snapshotter-metrics.ts'
import { serveSnapshots } from '../snapshotter/snapshots-service.ts'
import { edgeFor, registryCredentials, untilSignal } from './command.ts'
import { recordLimitMs } from './host-mounts.ts'

const USAGE = `usage: thaw snapshotter [options]

A containerd remote snapshotter: serves containerd.services.snapshots.v1.Snapshots on a unix
socket. Layers of images with a thaw streaming artifact are answered "already exists" over one
lazy FUSE mount of the image (nothing is downloaded or unpacked); everything else is an ordinary
overlayfs snapshot, so it is safe as a node's default snapshotter. In containerd's config:

  [proxy_plugins.thaw]
    type = "snapshot"
    address = "/run/thaw/snapshotter.sock"

then pull with the remote-snapshot labels (the CRI plugin with snapshotter = "thaw", or
ctr-remote image rpull --snapshotter thaw IMAGE) and run with --snapshotter thaw.

options:
      --config <file>          JSON config (host/snapshotter/README.md); flags override it
      --socket <path>          gRPC socket (default /run/thaw/snapshotter.sock)
      --root <dir>             metadata, snapshots, cache, mounts (default /var/lib/thaw/snapshotter)
      --edge <url>             an edge images are pulled through, nearest first (repeatable)
      --docker-config <file>   registry credentials by host (docker config.json, image-pull secret)
      --metrics-address <h:p>  serve Prometheus /metrics there (default: off)
      --no-background          fetch only what is read (no background fetch of the rest)
      --log-level <level>      debug, info, warn or error (default info)
  -h, --help                   this help

Without --docker-config, THAW_REGISTRY_USERNAME and THAW_REGISTRY_PASSWORD are used for every
registry and edge when set.

The first cold start of an image the edge has no profile of is recorded on its lazy mount (from
the container's first file open, for THAW_RECORD_LIMIT_MS, default 10 s) and uploaded to the edge
as the image's default profile; later pulls, on any node, replay the edge's prefetch bundle
(config recordProfiles, default true).

Lazy mounts outlive the snapshotter: their FUSE connections are held by thaw-fuse-keeper, so a
running container keeps its image if the snapshotter dies, and the restarted snapshotter serves
it again (config keepMounts, default true; keeperSocket, default /run/thaw/fuse-keeper.sock).
`

/** `thaw snapshotter`: serves until SIGINT or SIGTERM. */
export async function main(argv: string[]): Promise<number> {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        socket: { type: 'string' },
        root: { type: 'string' },
        edge: { type: 'string', multiple: true },
        'docker-config': { type: 'string' },
        'metrics-address': { type: 'string' },
        'no-background': { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    throw new ThawError('OPTIONS_INVALID', `${(err as Error).message}\n\n${USAGE}`, {
      fault: 'user',
    })
  }
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const file = values.config ? await readSnapshotterConfig(values.config) : {}
  const config = parseSnapshotterConfig(
    {
      ...file,
      ...(values.socket && { socket: values.socket }),
      ...(values.root && { root: values.root }),
      ...(values.edge && { edges: values.edge }),
      ...(values['docker-config'] && { dockerConfig: values['docker-config'] }),
      ...(values['metrics-address'] && { metricsAddress: values['metrics-address'] }),
      ...(values['no-background'] && { background: false }),
      ...(values['log-level'] && { logLevel: values['log-level'] }),
    },
    values.config ?? 'flags',
  )
  await runSnapshotter(config)
  return 0
}

async function runSnapshotter(config: SnapshotterConfig): Promise<void> {
  const logger = jsonHostLogger(undefined, config.logLevel)
  const root = resolve(config.root)
  const socket = resolve(config.socket)
  // A docker config that is not there (an optional secret not created) means anonymous.
  const hasDockerConfig = config.dockerConfig !== undefined && existsSync(config.dockerConfig)
  if (config.dockerConfig && !hasDockerConfig)
    logger.log('warn', 'no docker config: pulling anonymously', {
      dockerConfig: config.dockerConfig,
    })
  const credentials =
    config.dockerConfig && hasDockerConfig
      ? await readDockerConfig(config.dockerConfig)
      : registryCredentials()
  const metrics = new SnapshotterMetrics()
  const keeper = config.keepMounts ? await FuseKeeper.open(config.keeperSocket) : undefined
  const mounts = await createImageMounts({
    keeper,
    edges: config.edges,
    cacheDir: join(root, 'cache'),
    mountRoot: join(root, 'mnt'),
    cacheBytes: config.cacheBytes,
    background: config.background,
    credentials,
    recordLimitMs: config.recordLimitMs ?? recordLimitMs(),
    logger: {
      info: (msg) => logger.log('info', msg, { part: 'mount' }),
      warn: (msg) => logger.log('warn', msg, { part: 'mount' }),
    },
  })
  // The first cold start of an image the edge has no profile of is recorded and uploaded there,
  // as thaw host does it: the edge re-lays the image out and later pulls replay its bundle.
  const profiles = config.recordProfiles
    ? createProfileTracker({
        logger,
        edgeFor: (registry) => edgeFor(config.edges, registry),
        credentials,
      })
    : undefined
  const snapshotter = await Snapshotter.open({ root, mounts, logger, metrics, profiles })
  await mkdir(dirname(socket), { recursive: true })
  const server = await serveSnapshots({ socket, snapshotter, logger, metrics })
  const metricsServer = config.metricsAddress
    ? await serveMetrics(config.metricsAddress, metrics)
    : undefined
  logger.log('info', 'listening', {
    socket,
    root,
    edges: config.edges,
    metrics: config.metricsAddress,
  })
  await untilSignal()
  logger.log('info', 'stopping')
  await server.close()
  metricsServer?.close()
  await snapshotter.close()
  await profiles?.close() // uploads in flight finish first
  await mounts.close()
}

async function serveMetrics(address: string, metrics: SnapshotterMetrics) {
  const colon = address.lastIndexOf(':')
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    )
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(Number(address.slice(colon + 1)), address.slice(0, colon) || undefined, ok)
  })
  return server
}
