import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError, isThawError } from '../../runtime/errors.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { formatImageReference, parseImageReference } from '../../runtime/oci/reference.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AcquireOptions, ImageMounts, MountLease } from '../mount/image-mounts.ts'
import type { ProfileTracker } from '../pool/profile-tracker.ts'
import { diskUsage } from './disk-usage.ts'
import { remoteLayer, type RemoteLayer } from './remote-labels.ts'
import { SnapshotError } from './snapshot-error.ts'
import { matchesFilters } from './snapshot-filters.ts'
import { SnapshotStore, type SnapshotKind, type SnapshotRecord } from './snapshot-store.ts'
import type { SnapshotterMetrics } from './snapshotter-metrics.ts'

/** containerd's types.Mount: what the caller mounts (`mount -t type -o options source target`). */
export interface Mount {
  type: string
  source: string
  options: string[]
}

export interface SnapshotInfo {
  name: string
  parent: string
  kind: SnapshotKind
  labels: Record<string, string>
  createdAt: Date
  updatedAt: Date
}

export interface SnapshotterOptions {
  /** Metadata and snapshot folders (`<root>/metadata.json`, `<root>/snapshots/<id>/{fs,work}`). */
  root: string
  /** The lazy mounts of images with a streaming artifact (the host's createImageMounts). */
  mounts: ImageMounts
  logger: HostLogger
  metrics?: SnapshotterMetrics
  /**
   * Records the first cold start of an image the edge has no profile of and uploads it as the
   * image's default profile (thaw host's tracker); none: nothing is recorded.
   */
  profiles?: ProfileTracker
}

/**
 * containerd's snapshotter contract (containerd/snapshots.Snapshotter) over overlayfs, with remote
 * layers: a Prepare whose labels name an image with a streaming artifact (remote-labels.ts) is
 * answered AlreadyExists after committing the layer under its chain ID, so containerd downloads
 * nothing. The image's top layer is its lazy mount (one FUSE mount of the merged index for all
 * layers, through ImageMounts: the host's mounts, verified cache and prefetch replay); the layers
 * under it are empty, and a chain stops at the first lazy layer. Everything else (writable
 * snapshots, images without an artifact, unpacks) is an overlay snapshot in `<root>/snapshots`.
 */
export class Snapshotter {
  readonly #root: string
  readonly #store: SnapshotStore
  readonly #mounts: ImageMounts
  readonly #log: HostLogger
  readonly #metrics: SnapshotterMetrics | undefined
  readonly #profiles: ProfileTracker | undefined
  /** Leases of remote snapshots this process holds, by snapshot name. */
  readonly #leases = new Map<string, Promise<MountLease>>()
  #lock: Promise<unknown> = Promise.resolve()

  private constructor(options: SnapshotterOptions, store: SnapshotStore) {
    this.#root = options.root
    this.#store = store
    this.#mounts = options.mounts
    this.#log = options.logger
    this.#metrics = options.metrics
    this.#profiles = options.profiles
  }

  static async open(options: SnapshotterOptions): Promise<Snapshotter> {
    await mkdir(join(options.root, 'snapshots'), { recursive: true })
    const snapshotter = new Snapshotter(options, await SnapshotStore.open(options.root))
    snapshotter.#restoreLeases()
    return snapshotter
  }

  /**
   * After a restart: every remote layer held a lease on its image's mount, so they take them
   * again. The mounts a keeper held through the restart (running containers use them) are served
   * again and go when their images are removed, as they would have without the restart. In the
   * background: an edge that does not answer only delays it (a later use acquires again).
   */
  #restoreLeases(): void {
    for (const record of this.#store.all()) {
      if (!record.remote || this.#leases.has(record.name)) continue
      const lease = this.#mounts.acquire(record.remote.reference)
      this.#leases.set(record.name, lease)
      lease.catch((err: unknown) => {
        if (this.#leases.get(record.name) === lease) this.#leases.delete(record.name)
        this.#log.log('warn', 'a lazy mount was not taken again after the restart', {
          snapshot: record.name,
          reference: record.remote!.reference,
          reason: describeError(err),
        })
      })
    }
  }

  /** One change at a time: metadata, folders and leases stay consistent. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task, task)
    this.#lock = run.catch(() => {})
    return run
  }

  prepare(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    const remote = remoteLayer(labels)
    if (remote) return this.#prepareRemote(key, parent, labels, remote)
    return this.#serial(() => this.#create('active', key, parent, labels))
  }

  view(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#serial(() => this.#create('view', key, parent, labels))
  }

  mounts(key: string): Promise<Mount[]> {
    return this.#serial(async () => {
      const record = this.#get(key)
      if (record.kind === 'committed')
        throw new SnapshotError(
          'FAILED_PRECONDITION',
          `snapshot ${key} is committed: it has no mounts`,
        )
      return this.#mountsOf(record)
    })
  }

  commit(name: string, key: string, labels: Record<string, string>): Promise<void> {
    return this.#serial(async () => {
      const record = this.#get(key)
      if (record.kind !== 'active')
        throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} is not active`)
      if (this.#store.get(name))
        throw new SnapshotError('ALREADY_EXISTS', `snapshot ${name} exists`)
      const usage = await diskUsage(this.#fs(record.id))
      const now = new Date().toISOString()
      await this.#save((all) => {
        all.delete(key)
        all.set(name, {
          ...record,
          name,
          kind: 'committed',
          labels: { ...record.labels, ...labels },
          createdAt: now,
          updatedAt: now,
          usage,
        })
      })
      this.#metrics?.snapshots.inc({ kind: 'committed' })
    })
  }

  remove(key: string): Promise<void> {
    return this.#serial(async () => {
      const record = this.#get(key)
      if (this.#store.children(key).length > 0)
        throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} has children`)
      await this.#save((all) => void all.delete(key))
      // After the metadata: a crash in between leaves a folder that cleanup() removes.
      await rm(join(this.#root, 'snapshots', record.id), { recursive: true, force: true })
      const lease = this.#leases.get(key)
      this.#leases.delete(key)
      await lease?.then((l) => l.release()).catch(() => {})
    })
  }

  stat(key: string): Promise<SnapshotInfo> {
    return this.#serial(async () => info(this.#get(key)))
  }

  /** Labels are the only mutable part; `paths` are `labels` or `labels.<key>` (none: all). */
  update(
    name: string,
    labels: Record<string, string>,
    paths: readonly string[],
  ): Promise<SnapshotInfo> {
    return this.#serial(async () => {
      const record = this.#get(name)
      let next = { ...labels }
      if (paths.length > 0) {
        next = { ...record.labels }
        for (const path of paths) {
          if (path === 'labels') next = { ...labels }
          else if (path.startsWith('labels.')) {
            const k = path.slice('labels.'.length)
            if (labels[k] === undefined) delete next[k]
            else next[k] = labels[k]
          } else
            throw new SnapshotError('INVALID_ARGUMENT', `cannot update ${path} of snapshot ${name}`)
        }
      }
      await this.#save((all) => {
        all.set(name, { ...record, labels: next, updatedAt: new Date().toISOString() })
      })
      return info(this.#get(name))
    })
  }

  list(filters: readonly string[]): Promise<SnapshotInfo[]> {
    return this.#serial(async () =>
      this.#store
        .all()
        .filter((r) => matchesFilters(r, filters))
        .map(info),
    )
  }

  /** A committed snapshot's usage as measured at commit; an active one's now. Remote: 0. */
  usage(key: string): Promise<{ size: number; inodes: number }> {
    return this.#serial(async () => {
      const record = this.#get(key)
      if (record.remote) return { size: 0, inodes: 0 }
      return record.usage ?? (await diskUsage(this.#fs(record.id)))
    })
  }

  /** Removes snapshot folders no snapshot owns (left by a crash between metadata and rm). */
  cleanup(): Promise<void> {
    return this.#serial(async () => {
      const owned = new Set(this.#store.all().map((r) => r.id))
      const dir = join(this.#root, 'snapshots')
      for (const id of await readdir(dir)) {
        if (owned.has(id)) continue
        this.#log.log('info', 'cleanup: removing an orphaned snapshot folder', { id })
        await rm(join(dir, id), { recursive: true, force: true })
      }
    })
  }

  /** Releases every lease (unmounts when no one else holds them); the metadata stays. */
  async close(): Promise<void> {
    await this.#serial(async () => {
      const leases = [...this.#leases.values()]
      this.#leases.clear()
      await Promise.all(leases.map((l) => l.then((x) => x.release()).catch(() => {})))
    })
  }

  /**
   * The handshake (stargz-snapshotter's, containerd docs/remote-snapshotter.md): the layer is
   * committed as `target` and containerd is told AlreadyExists, so it neither downloads nor
   * unpacks it. An image without a streaming artifact, or an edge that cannot say, gets an
   * ordinary snapshot to unpack into, unless the layers under it were already made remote.
   */
  async #prepareRemote(
    key: string,
    parent: string,
    labels: Record<string, string>,
    remote: RemoteLayer,
  ): Promise<Mount[]> {
    const exists = this.#store.get(remote.target)
    if (exists?.kind === 'committed')
      throw new SnapshotError('ALREADY_EXISTS', `target snapshot ${remote.target} exists`)
    const t0 = performance.now()
    const options = this.#acquireOptions(remote.reference)
    const lease = this.#mounts.acquire(remote.reference, options)
    let acquired: MountLease
    let t1: number
    try {
      acquired = await lease
      t1 = performance.now()
      this.#track(remote.reference, acquired, options)
    } catch (err) {
      this.#metrics?.remotePrepares.inc({ result: 'fallback' })
      // No artifact is the ordinary case; an edge that fails is worth a warning. Either way the
      // layer is unpacked as usual (a lower layer already made lazy is refused in #create).
      const level = isThawError(err, 'IMAGE_NOT_STREAMABLE') ? 'info' : 'warn'
      this.#log.log(level, 'not a lazy image: an ordinary snapshot to unpack into', {
        reference: remote.reference,
        layer: remote.layer,
        reason: describeError(err),
      })
      return this.#serial(() => this.#create('active', key, parent, labels))
    }
    return this.#serial(async () => {
      const t2 = performance.now()
      try {
        if (this.#store.get(remote.target))
          throw new SnapshotError('ALREADY_EXISTS', `target snapshot ${remote.target} exists`)
        if (parent) this.#get(parent)
        const now = new Date().toISOString()
        const id = this.#store.newId()
        await mkdir(this.#fs(id), { recursive: true })
        const record: SnapshotRecord = {
          id,
          name: remote.target,
          parent,
          kind: 'committed',
          labels: { ...labels },
          createdAt: now,
          updatedAt: now,
          usage: { size: 0, inodes: 0 },
          remote: {
            // Pinned: a lazy layer mounted again after a restart is the same image.
            reference: pinned(remote.reference, acquired.image.manifest),
            manifest: acquired.image.manifest,
            lazy: remote.top,
          },
        }
        await this.#save((all) => void all.set(remote.target, record))
        this.#leases.set(remote.target, lease)
      } catch (err) {
        await acquired.release()
        throw err
      }
      this.#metrics?.remotePrepares.inc({ result: 'lazy' })
      this.#metrics?.snapshots.inc({ kind: 'remote' })
      this.#log.log('info', 'remote layer', {
        target: remote.target,
        reference: remote.reference,
        layer: remote.layer,
        top: remote.top,
        manifest: acquired.image.manifest,
        ms: Math.round(performance.now() - t0),
        // Where the Prepare's time went: the acquire, waiting for the changes before it, and
        // the folder and metadata written (fsync'ed); and whether the bundle was replayed.
        acquireMs: Math.round(t1 - t0),
        lockMs: Math.round(t2 - t1),
        saveMs: Math.round(performance.now() - t2),
        resolveMs: Math.round(acquired.timings.resolveMs),
        mountMs: Math.round(acquired.timings.mountMs),
        prefetchMs: Math.round(acquired.timings.prefetchMs),
        replayed: acquired.replayed,
        recording: acquired.recording,
      })
      throw new SnapshotError('ALREADY_EXISTS', `target snapshot ${remote.target} exists`)
    })
  }

  /**
   * A remote layer's acquire. Nothing tells the snapshotter when a container's start is over (a
   * node pulls an image before it runs it, and the container's answers are not its to see), so
   * the start begins at the mount's first file open and is over `recordLimitMs` later (10 s by
   * default, THAW_RECORD_LIMIT_MS; stargz-snapshotter records for 10 s too). The image's first cold
   * start on this node records, unless the edge has a bundle of the image to replay: it is the
   * image's default workload (the pull names nothing better), which every later Prepare asks for.
   */
  #acquireOptions(reference: string): AcquireOptions {
    const wanted = this.#profiles?.acquireOptions(reference)
    return {
      replay: true,
      startsAtFirstAccess: true,
      record: wanted?.record ? 'without-bundle' : false,
      workload: '',
    }
  }

  /** A recording lease's profile goes to the edge when its start is over (the tracker uploads). */
  #track(reference: string, lease: MountLease, options: AcquireOptions): void {
    const profiles = this.#profiles
    if (!profiles) return
    profiles.acquired(reference, lease, options)
    if (!lease.recording) return
    void lease.startEnded.then((how) => {
      if (how === 'started') profiles.firstResponse(reference, lease)
      else profiles.abandoned(reference) // released before anything ran: the next start records
    })
  }

  async #create(
    kind: 'active' | 'view',
    key: string,
    parent: string,
    labels: Record<string, string>,
  ): Promise<Mount[]> {
    if (this.#store.get(key)) throw new SnapshotError('ALREADY_EXISTS', `snapshot ${key} exists`)
    if (parent) {
      const p = this.#get(parent)
      if (p.kind !== 'committed')
        throw new SnapshotError('FAILED_PRECONDITION', `parent ${parent} is not committed`)
      if (p.remote && !p.remote.lazy)
        throw new SnapshotError(
          'FAILED_PRECONDITION',
          `parent ${parent} is a lower layer of ${p.remote.reference}, served lazily as part of ` +
            'its top layer: its own files are not on this node. Remove that image and pull this one again',
        )
    }
    const id = this.#store.newId()
    const now = new Date().toISOString()
    const record: SnapshotRecord = {
      id,
      name: key,
      parent,
      kind,
      labels,
      createdAt: now,
      updatedAt: now,
    }
    await mkdir(this.#fs(id), { recursive: true })
    if (kind === 'active') await mkdir(join(this.#root, 'snapshots', id, 'work'))
    try {
      const mounts = await this.#mountsOf(record)
      await this.#save((all) => void all.set(key, record))
      this.#metrics?.snapshots.inc({ kind })
      return mounts
    } catch (err) {
      await rm(join(this.#root, 'snapshots', id), { recursive: true, force: true })
      throw err
    }
  }

  /** containerd's overlay snapshotter's mounts, with a chain that stops at a lazy image root. */
  async #mountsOf(record: SnapshotRecord): Promise<Mount[]> {
    const lowers: string[] = []
    for (let name = record.parent; name;) {
      const p = this.#get(name)
      if (p.remote?.lazy) {
        lowers.push(await this.#lazyRoot(p))
        break
      }
      if (!p.remote) lowers.push(this.#fs(p.id))
      name = p.parent
    }
    const fs = this.#fs(record.id)
    if (record.kind === 'active') {
      if (lowers.length === 0) return [{ type: 'bind', source: fs, options: ['rw', 'rbind'] }]
      const work = join(this.#root, 'snapshots', record.id, 'work')
      return [
        {
          type: 'overlay',
          source: 'overlay',
          options: [`workdir=${work}`, `upperdir=${fs}`, `lowerdir=${lowers.join(':')}`],
        },
      ]
    }
    if (lowers.length <= 1)
      return [{ type: 'bind', source: lowers[0] ?? fs, options: ['ro', 'rbind'] }]
    return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lowers.join(':')}`] }]
  }

  /** The image's FUSE mount, acquired again when this process holds no lease (a restart). */
  async #lazyRoot(record: SnapshotRecord): Promise<string> {
    let lease = this.#leases.get(record.name)
    if (!lease) {
      lease = this.#mounts.acquire(record.remote!.reference)
      this.#leases.set(record.name, lease)
      lease.catch(() => this.#leases.delete(record.name))
    }
    try {
      return (await lease).root
    } catch (err) {
      throw new SnapshotError(
        'UNAVAILABLE',
        `the lazy mount of ${record.remote!.reference} failed: ${describeError(err)}`,
        err,
      )
    }
  }

  /** A metadata change, then the gauge of snapshots held. */
  async #save(change: Parameters<SnapshotStore['update']>[0]): Promise<void> {
    await this.#store.update(change)
    if (!this.#metrics) return
    const counts: Record<string, number> = { active: 0, view: 0, committed: 0, remote: 0 }
    for (const r of this.#store.all()) counts[r.remote ? 'remote' : r.kind]!++
    for (const [kind, n] of Object.entries(counts)) this.#metrics.held.set({ kind }, n)
  }

  #get(name: string): SnapshotRecord {
    const record = this.#store.get(name)
    if (!record) throw new SnapshotError('NOT_FOUND', `snapshot ${name} does not exist`)
    return record
  }

  #fs(id: string): string {
    return join(this.#root, 'snapshots', id, 'fs')
  }
}

function pinned(reference: string, manifest: Digest): string {
  return formatImageReference({
    ...parseImageReference(reference),
    tag: undefined,
    digest: manifest,
  })
}

function info(r: SnapshotRecord): SnapshotInfo {
  return {
    name: r.name,
    parent: r.parent,
    kind: r.kind,
    labels: r.labels,
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
  }
}
