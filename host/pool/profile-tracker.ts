import { thawPaths } from '../../runtime/artifact/thaw-api.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { parseImageReference } from '../../runtime/oci/reference.ts'
import {
  createRegistryClient,
  readBody,
  type CredentialsOption,
  type RegistryClient,
} from '../../runtime/oci/remote/index.ts'
import { serializeProfile, type Profile } from '../../runtime/profile/profile.ts'
import type { HostLogger } from '../log/host-logger.ts'
import type { AcquireOptions, MountedImage, MountLease } from '../mount/image-mounts.ts'

/**
 * Where an image's start profile stands on this host:
 * - `none`: no cold start yet; the next one records,
 * - `recording`: a cold start is recording (until its first response),
 * - `uploading`: the profile is being POSTed to the edge,
 * - `uploaded`: the edge has it; later cold starts replay (the edge re-lays the artifact),
 * - `failed`: recording or the upload failed (`error` says why); the next cold start records again.
 */
export type ProfileStateName = 'none' | 'recording' | 'uploading' | 'uploaded' | 'failed'

export interface ProfileState {
  reference: string
  /** What ran: the app, or `<app>/<function>` (profiles are kept per image and workload). */
  workload: string
  state: ProfileStateName
  manifest?: Digest
  /** Files in the recorded profile. */
  entries?: number
  /** What the edge answered: the stored profile's digest and the runs merged. */
  edge?: unknown
  error?: string
  /** Cold starts that recorded, and that replayed. */
  recorded: number
  replayed: number
  updatedAt: string
}

export interface ProfileTracker {
  /** acquire() options for a cold start of `reference` running `workload`. */
  acquireOptions(reference: string, workload?: string): AcquireOptions
  /** After the acquire: counts a replay, marks recording (when the lease records). */
  acquired(reference: string, lease: MountLease, options: AcquireOptions): void
  /** At a node's first response: stops recording and uploads in the background. */
  firstResponse(reference: string, lease: MountLease): void
  /**
   * A node went away before its first response (a rollout's health gate, then drained): what
   * it recorded is dropped, and the next cold start records again.
   */
  abandoned(reference: string, workload?: string): void
  states(): ProfileState[]
  /** Waits for uploads in flight (tests, shutdown). */
  settled(): Promise<void>
  /** Waits for uploads in flight, then closes the connections to the edges. Idempotent. */
  close(): Promise<void>
}

/**
 * Record/replay bookkeeping, per image and workload. The first cold starts of an image for a
 * workload record (until one upload succeeds); at the first response the recording stops and the
 * profile (which names its workload) is POSTed to the edge's
 * `_thaw/profiles/<manifest>` (runtime/artifact/thaw-api.ts) in the background, off the request
 * path. Replay is always allowed: the mounts replay a bundle when the edge has one.
 */
export function createProfileTracker(o: {
  logger: HostLogger
  /** Base URL of the edge that takes profiles for `registry` (default `http://<registry>`). */
  edgeFor?: (registry: string) => string
  /** For an edge with auth on (the profiles extension needs push on the repository). */
  credentials?: CredentialsOption
  /**
   * Profiles off (`thaw host --no-profiles`): no start records, none replays a bundle; every
   * cold start reads what it needs on demand. Default true.
   */
  enabled?: boolean
}): ProfileTracker {
  const states = new Map<string, ProfileState>()
  const uploads = new Set<Promise<void>>()
  const clients = new Map<string, RegistryClient>()
  const clientFor = (base: string) => {
    let client = clients.get(base)
    if (!client) {
      client = createRegistryClient({ registry: base, credentials: o.credentials })
      clients.set(base, client)
    }
    return client
  }
  const get = (reference: string, workload: string): ProfileState => {
    const key = `${reference}\n${workload}`
    let s = states.get(key)
    if (!s) {
      const updatedAt = new Date().toISOString()
      s = { reference, workload, state: 'none', recorded: 0, replayed: 0, updatedAt }
      states.set(key, s)
    }
    return s
  }
  const set = (s: ProfileState, patch: Partial<ProfileState>) =>
    Object.assign(s, patch, { updatedAt: new Date().toISOString() })

  async function upload(s: ProfileState, image: MountedImage, profile: Profile) {
    const registry = parseImageReference(image.reference).registry!
    const base = o.edgeFor?.(registry) ?? `http://${registry}`
    const path = thawPaths.profiles(image.repository, image.manifest)
    try {
      const res = await clientFor(base).extension(image.repository, {
        method: 'POST',
        path,
        headers: { 'content-type': 'application/vnd.thaw.profile.v1+json' },
        body: serializeProfile(profile),
        signal: AbortSignal.timeout(30_000),
      })
      const text = (await readBody(res, 1024 * 1024, `POST ${path}`)).toString()
      if (res.status < 200 || res.status > 299) {
        throw new Error(`the edge answered ${res.status} to ${path}: ${text.slice(0, 300)}`)
      }
      set(s, { state: 'uploaded', edge: safeJson(text), error: undefined })
      o.logger.log('info', 'profile uploaded', {
        image: image.reference,
        workload: profile.workload,
        entries: profile.entries.length,
      })
    } catch (err) {
      set(s, { state: 'failed', error: (err as Error).message })
      o.logger.log('warn', `profile upload failed: ${(err as Error).message}`, {
        image: image.reference,
      })
    }
  }

  return {
    acquireOptions(reference, workload = '') {
      if (o.enabled === false) return { record: false, replay: false, workload }
      const s = get(reference, workload)
      return { record: s.state === 'none' || s.state === 'failed', replay: true, workload }
    },
    acquired(reference, lease, options) {
      const s = get(reference, options.workload ?? '')
      if (lease.replayed) s.replayed++
      // A record: 'without-bundle' acquire records only when the edge had no bundle to replay.
      if (options.record && lease.recording)
        set(s, { state: 'recording', manifest: lease.image.manifest, recorded: s.recorded + 1 })
    },
    firstResponse(reference, lease) {
      const profile = lease.started()
      if (!profile) return
      const s = get(reference, profile.workload)
      if (s.state === 'uploading' || s.state === 'uploaded') return // another node got there first
      set(s, { state: 'uploading', entries: profile.entries.length })
      const p = upload(s, lease.image, profile)
      uploads.add(p)
      void p.finally(() => uploads.delete(p))
    },
    abandoned(reference, workload = '') {
      const s = get(reference, workload)
      if (s.state === 'recording') set(s, { state: 'none' })
    },
    states: () => [...states.values()].map((s) => ({ ...s })),
    async settled() {
      await Promise.allSettled([...uploads])
    },
    async close() {
      await Promise.allSettled([...uploads])
      await Promise.all([...clients.values()].map((c) => c.close()))
    },
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text.slice(0, 300)
  }
}
