import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { describeError } from '../../runtime/errors.ts'
import type { HostLogger } from '../log/host-logger.ts'
import { SnapshotError, type SnapshotErrorCode } from './snapshot-error.ts'
import type { Mount, SnapshotInfo, Snapshotter } from './snapshotter.ts'
import type { SnapshotterMetrics } from './snapshotter-metrics.ts'

const PROTO_DIR = join(import.meta.dirname, 'proto')
const SNAPSHOTS_PROTO = 'github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto'

/** The gRPC status each SnapshotError code travels as (containerd errdefs' FromGRPC reads it back). */
const STATUS: Record<SnapshotErrorCode, grpc.status> = {
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
}

const KIND = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' } as const

interface Timestamp {
  seconds: number
  nanos: number
}

/** The snapshots.proto service definition, loaded from the vendored files (proto/README.md). */
export function loadSnapshotsService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(join(PROTO_DIR, SNAPSHOTS_PROTO), {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  })
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } }
  }
  return pkg.containerd.services.snapshots.v1.Snapshots.service
}

export interface SnapshotsServer {
  readonly socket: string
  close(): Promise<void>
}

/**
 * `containerd.services.snapshots.v1.Snapshots` on a unix socket: what containerd calls for a
 * `[proxy_plugins.<name>]` of type "snapshot". A stale socket file is replaced.
 */
export async function serveSnapshots(options: {
  socket: string
  snapshotter: Snapshotter
  logger: HostLogger
  metrics?: SnapshotterMetrics
}): Promise<SnapshotsServer> {
  const { snapshotter: sn, logger, metrics } = options
  const server = new grpc.Server()
  const labelsOf = (l: Record<string, string> | undefined) => ({ ...l })

  const unary =
    <Req, Res>(method: string, handle: (req: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const end = metrics?.callDuration.startTimer({ method })
      handle(call.request).then(
        (res) => {
          end?.()
          metrics?.calls.inc({ method, code: 'OK' })
          callback(null, res)
        },
        (err: unknown) => {
          end?.()
          const status = statusOf(err)
          metrics?.calls.inc({ method, code: grpc.status[status] })
          if (!(err instanceof SnapshotError) || err.fault === 'system')
            logger.log('error', `${method} failed`, { error: describeError(err) })
          else logger.log('debug', `${method}: ${err.code}`, { error: err.message })
          callback({ code: status, details: err instanceof Error ? err.message : String(err) })
        },
      )
    }

  type KeyReq = { key: string; parent: string; labels: Record<string, string> }
  server.addService(loadSnapshotsService(), {
    Prepare: unary('Prepare', async (r: KeyReq) => ({
      mounts: toMounts(await sn.prepare(r.key, r.parent, labelsOf(r.labels))),
    })),
    View: unary('View', async (r: KeyReq) => ({
      mounts: toMounts(await sn.view(r.key, r.parent, labelsOf(r.labels))),
    })),
    Mounts: unary('Mounts', async (r: { key: string }) => ({
      mounts: toMounts(await sn.mounts(r.key)),
    })),
    Commit: unary(
      'Commit',
      async (r: { name: string; key: string; labels: Record<string, string> }) => {
        await sn.commit(r.name, r.key, labelsOf(r.labels))
        return {}
      },
    ),
    Remove: unary('Remove', async (r: { key: string }) => {
      await sn.remove(r.key)
      return {}
    }),
    Stat: unary('Stat', async (r: { key: string }) => ({ info: toInfo(await sn.stat(r.key)) })),
    Update: unary(
      'Update',
      async (r: {
        info?: { name: string; labels: Record<string, string> }
        update_mask?: { paths: string[] }
      }) => {
        if (!r.info?.name) throw new SnapshotError('INVALID_ARGUMENT', 'Update needs info.name')
        const paths = r.update_mask?.paths ?? []
        return { info: toInfo(await sn.update(r.info.name, labelsOf(r.info.labels), paths)) }
      },
    ),
    List: (call: grpc.ServerWritableStream<{ filters: string[] }, unknown>) => {
      const end = metrics?.callDuration.startTimer({ method: 'List' })
      sn.list(call.request.filters ?? []).then(
        (infos) => {
          for (let i = 0; i < infos.length; i += 100)
            call.write({ info: infos.slice(i, i + 100).map(toInfo) })
          end?.()
          metrics?.calls.inc({ method: 'List', code: 'OK' })
          call.end()
        },
        (err: unknown) => {
          end?.()
          const status = statusOf(err)
          metrics?.calls.inc({ method: 'List', code: grpc.status[status] })
          call.destroy(Object.assign(new Error(describeError(err)), { code: status }))
        },
      )
    },
    Usage: unary('Usage', async (r: { key: string }) => sn.usage(r.key)),
    Cleanup: unary('Cleanup', async () => {
      await sn.cleanup()
      return {}
    }),
  })
  await rm(options.socket, { force: true })
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${options.socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  )
  let closing: Promise<void> | undefined
  return {
    socket: options.socket,
    close() {
      closing ??= new Promise<void>((resolve) => {
        // In-flight calls get 5 s to finish; then the server stops hard.
        const timer = setTimeout(() => server.forceShutdown(), 5000)
        server.tryShutdown(() => {
          clearTimeout(timer)
          resolve()
        })
      })
      return closing
    },
  }
}

function statusOf(err: unknown): grpc.status {
  return err instanceof SnapshotError ? STATUS[err.code] : grpc.status.UNKNOWN
}

function toMounts(mounts: Mount[]) {
  return mounts.map((m) => ({ type: m.type, source: m.source, options: m.options }))
}

function toInfo(i: SnapshotInfo) {
  return {
    name: i.name,
    parent: i.parent,
    kind: KIND[i.kind],
    created_at: timestamp(i.createdAt),
    updated_at: timestamp(i.updatedAt),
    labels: i.labels,
  }
}

function timestamp(d: Date): Timestamp {
  const ms = d.getTime()
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 }
}
