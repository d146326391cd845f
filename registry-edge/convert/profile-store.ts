import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MediaType,
  digestHex,
  sha256Of,
  type Descriptor,
  type Digest,
} from '../../runtime/oci/index.ts'
import {
  layoutOrder,
  mergeProfiles,
  parseProfile,
  serializeProfile,
  type Profile,
} from '../../runtime/profile/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import { KeyedMutex } from '../store/keyed-mutex.ts'
import { readJsonIfExists, writeFileAtomic } from './atomic-json.ts'
import { putBlob } from './backend-blobs.ts'
import type { OutputTarget } from './output-target.ts'
import type { ProfileSource } from './converter.ts'

export interface MergedProfile {
  /** sha256 of the merged profile's JSON (its blob in the registry). */
  digest: Digest
  profile: Profile
  bytes: Uint8Array
}

/** The workload of a profile referrer (absent for the unnamed default). */
export const WORKLOAD_ANNOTATION = 'dev.thaw.workload'

/** The empty config of an artifact manifest (image-spec v1.1 manifest.md, "Guidance for an Empty Descriptor"). */
const EMPTY_CONFIG = new TextEncoder().encode('{}')

/**
 * Profiles of images, per workload: every uploaded run is kept, and the runs of the upload's
 * workload are merged (runtime/profile mergeProfiles: union, median first access). A host names
 * the workload (its app, or app/function when a cold start is for one function); the unnamed
 * workload `""` is the default, used for a workload that has no profile of its own. Each merged
 * profile is stored in the registry as a referrer of the image (artifactType
 * application/vnd.thaw.profile.v1+json, the profile JSON as its one layer, a named workload in the
 * annotation `dev.thaw.workload`) and replaces that workload's previous one there.
 *
 *   <dir>/<encoded repository>/<manifest hex>/runs/<run sha256 hex>.json   each run, as parsed
 *   <dir>/<encoded repository>/<manifest hex>/merged.json                  the unnamed workload's
 *   <dir>/<encoded repository>/<manifest hex>/published.json               { manifest } of its referrer
 *   <dir>/<encoded repository>/<manifest hex>/workloads/<name sha256 hex>/merged.json, published.json
 *
 * The image is laid out by all of them (`current`): the default's files first, then each named
 * workload's files not placed yet.
 */
export class ProfileStore implements ProfileSource {
  readonly #dir: string
  readonly #outputs: OutputTarget
  readonly #mutex = new KeyedMutex()

  /** Merged profiles are published as referrers through `outputs`. */
  constructor(dir: string, outputs: OutputTarget) {
    this.#dir = dir
    this.#outputs = outputs
  }

  /** Adds a run (already checked to belong to `manifest`), merges, publishes; the merged result. */
  async add(repository: string, manifest: Descriptor, run: Profile): Promise<MergedProfile> {
    return this.#mutex.run(`${repository}@${manifest.digest}`, async () => {
      const dir = this.#imageDir(repository, manifest.digest)
      const runBytes = serializeProfile(run)
      await writeFileAtomic(join(dir, 'runs', `${digestHex(sha256Of(runBytes))}.json`), runBytes)
      const runs = (await this.#runs(dir)).filter((p) => p.workload === run.workload)
      const profile = mergeProfiles(runs)
      const bytes = serializeProfile(profile)
      const merged = { digest: sha256Of(bytes), profile, bytes }
      const own = workloadDir(dir, run.workload)
      await this.#publish(repository, manifest, merged, own)
      await writeFileAtomic(join(own, 'merged.json'), bytes)
      return merged
    })
  }

  /** The merged profile of `workload` (default: the unnamed one), if it has one. */
  async merged(
    repository: string,
    manifest: Digest,
    workload = '',
  ): Promise<MergedProfile | undefined> {
    return readMerged(workloadDir(this.#imageDir(repository, manifest), workload))
  }

  /**
   * The profile a bundle for `workload` is built from: its own, else its parent's (`app` for
   * `app/function`, a function's first cold start replays what the app's recorded), else the
   * unnamed default.
   */
  async forWorkload(
    repository: string,
    manifest: Digest,
    workload: string,
  ): Promise<MergedProfile | undefined> {
    for (let w = workload; ; w = w.includes('/') ? w.slice(0, w.lastIndexOf('/')) : '') {
      const merged = await this.merged(repository, manifest, w)
      if (merged || w === '') return merged
    }
  }

  /** Every workload's merged profile, the unnamed one first, then by workload name. */
  async all(repository: string, manifest: Digest): Promise<MergedProfile[]> {
    const dir = this.#imageDir(repository, manifest)
    const named = await readdir(join(dir, 'workloads')).catch(() => [] as string[])
    const found = await Promise.all(
      [dir, ...named.map((n) => join(dir, 'workloads', n))].map(readMerged),
    )
    const [unnamed, ...rest] = found
    const byName = rest.filter((m) => m !== undefined)
    byName.sort((a, b) => (a.profile.workload < b.profile.workload ? -1 : 1))
    return unnamed ? [unnamed, ...byName] : byName
  }

  /**
   * The order the image is laid out in: every workload's files, the default's first, and the
   * ranges they read (runtime/profile `layoutOrder`). With one profile its digest names the
   * layout; with several, the sha256 of their digests in that order.
   */
  async current(repository: string, manifest: Digest) {
    const all = await this.all(repository, manifest)
    if (all.length === 0) return undefined
    const digest =
      all.length === 1 ? all[0]!.digest : sha256Of(Buffer.from(all.map((m) => m.digest).join('\n')))
    return { digest, ...layoutOrder(all.map((m) => m.profile)) }
  }

  /**
   * Garbage collection: the runs of each image and workload merged into one run (the merged
   * profile, its `runs` count kept), so `runs/` stops growing with every cold start. Later
   * uploads merge with it as with one run. Returns how many run files were (or, with `dryRun`,
   * would be) removed and their bytes less the compacted run's.
   */
  async compactRuns(dryRun: boolean): Promise<{ count: number; bytes: number }> {
    const freed = { count: 0, bytes: 0 }
    for (const repoDir of await listDir(this.#dir)) {
      for (const hex of await listDir(join(this.#dir, repoDir))) {
        const key = `${decodeURIComponent(repoDir)}@sha256:${hex}`
        const dir = join(this.#dir, repoDir, hex, 'runs')
        const done = await this.#mutex.run(key, () => compactDir(dir, dryRun))
        freed.count += done.count
        freed.bytes += done.bytes
      }
    }
    return freed
  }

  /** Removes everything kept for an image (its manifest was deleted). */
  async forget(repository: string, manifest: Digest): Promise<void> {
    await this.#mutex.run(`${repository}@${manifest}`, () =>
      rm(this.#imageDir(repository, manifest), { recursive: true, force: true }),
    )
  }

  async #runs(dir: string): Promise<Profile[]> {
    const files = (await readdir(join(dir, 'runs'))).filter((f) => f.endsWith('.json')).sort()
    return Promise.all(files.map(async (f) => parseProfile(await readFile(join(dir, 'runs', f)))))
  }

  /** The profile as a referrer manifest of the image; the previous one is removed from the registry. */
  async #publish(repository: string, subject: Descriptor, merged: MergedProfile, dir: string) {
    const digest = await this.#outputs.write(repository, (backend) =>
      this.#publishTo(backend, repository, subject, merged, dir),
    )
    await writeFileAtomic(join(dir, 'published.json'), JSON.stringify({ manifest: digest }))
  }

  async #publishTo(
    backend: RegistryBackend,
    repository: string,
    subject: Descriptor,
    merged: MergedProfile,
    dir: string,
  ): Promise<Digest> {
    await putBlob(backend, repository, sha256Of(EMPTY_CONFIG), EMPTY_CONFIG)
    await putBlob(backend, repository, merged.digest, merged.bytes)
    const { workload } = merged.profile
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: MediaType.thawProfile,
      config: {
        mediaType: MediaType.ociEmpty,
        digest: sha256Of(EMPTY_CONFIG),
        size: EMPTY_CONFIG.length,
      },
      layers: [
        { mediaType: MediaType.thawProfile, digest: merged.digest, size: merged.bytes.length },
      ],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      ...(workload !== '' && { annotations: { [WORKLOAD_ANNOTATION]: workload } }),
    }
    const bytes = new TextEncoder().encode(JSON.stringify(manifest))
    const digest = sha256Of(bytes)
    await backend.putManifest(repository, {
      digest,
      mediaType: MediaType.ociManifest,
      bytes,
      referrer: {
        subject: subject.digest,
        descriptor: {
          mediaType: MediaType.ociManifest,
          digest,
          size: bytes.length,
          artifactType: MediaType.thawProfile,
          ...(workload !== '' && { annotations: { [WORKLOAD_ANNOTATION]: workload } }),
        },
      },
    })
    const published = (await readJsonIfExists(join(dir, 'published.json'))) as
      { manifest?: Digest } | undefined
    if (published?.manifest && published.manifest !== digest) {
      await backend.deleteManifest(repository, published.manifest)
    }
    return digest
  }

  #imageDir(repository: string, manifest: Digest): string {
    return join(this.#dir, encodeURIComponent(repository), digestHex(manifest))
  }
}

/** One image's runs/: per workload, the runs replaced by their merge when there are several. */
async function compactDir(dir: string, dryRun: boolean): Promise<{ count: number; bytes: number }> {
  const byWorkload = new Map<string, { file: string; size: number; profile: Profile }[]>()
  for (const file of (await listDir(dir)).filter((f) => f.endsWith('.json'))) {
    const bytes = await readFile(join(dir, file))
    const profile = parseProfile(bytes)
    const group = byWorkload.get(profile.workload) ?? []
    group.push({ file, size: bytes.length, profile })
    byWorkload.set(profile.workload, group)
  }
  const freed = { count: 0, bytes: 0 }
  for (const runs of byWorkload.values()) {
    if (runs.length < 2) continue
    const merged = serializeProfile(mergeProfiles(runs.map((r) => r.profile)))
    const name = `${digestHex(sha256Of(merged))}.json`
    if (!dryRun) await writeFileAtomic(join(dir, name), merged)
    for (const run of runs) {
      if (run.file === name) continue
      if (!dryRun) await rm(join(dir, run.file), { force: true })
      freed.count++
      freed.bytes += run.size
    }
    freed.bytes -= merged.length
  }
  return freed
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return []
    throw err
  }
}

/** Where a workload's merged profile lives: the image's own directory for the unnamed one. */
function workloadDir(imageDir: string, workload: string): string {
  return workload === ''
    ? imageDir
    : join(imageDir, 'workloads', digestHex(sha256Of(Buffer.from(workload))))
}

async function readMerged(dir: string): Promise<MergedProfile | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(join(dir, 'merged.json'))
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw err
  }
  return { digest: sha256Of(bytes), profile: parseProfile(bytes), bytes }
}
