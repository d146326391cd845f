import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MediaType,
  digestHex,
  sha256Of,
  type Descriptor,
  type Digest,
} from '../../runtime/oci/index.ts'
import {
  mergeProfiles,
  parseProfile,
  serializeProfile,
  type Profile,
} from '../../runtime/profile/index.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import { KeyedMutex } from '../store/keyed-mutex.ts'
import { readJsonIfExists, writeFileAtomic } from './atomic-json.ts'
import { putBlob } from './backend-blobs.ts'
import type { ProfileSource } from './converter.ts'

export interface MergedProfile {
  /** sha256 of the merged profile's JSON (its blob in the registry). */
  digest: Digest
  profile: Profile
  bytes: Uint8Array
}

/** The empty config of an artifact manifest (image-spec v1.1 manifest.md, "Guidance for an Empty Descriptor"). */
const EMPTY_CONFIG = new TextEncoder().encode('{}')

/**
 * Profiles of images: every uploaded run is kept, and the runs of the newest upload's workload
 * are merged (runtime/profile mergeProfiles: union, median first access). The merged profile is
 * stored in the registry as a referrer of the image (artifactType application/vnd.thaw.profile.v1+json,
 * the profile JSON as its one layer) and replaces the previous one there.
 *
 *   <dir>/<encoded repository>/<manifest hex>/runs/<run sha256 hex>.json   each run, as parsed
 *   <dir>/<encoded repository>/<manifest hex>/merged.json                  the merged profile
 *   <dir>/<encoded repository>/<manifest hex>/published.json               { manifest } of its referrer
 */
export class ProfileStore implements ProfileSource {
  readonly #dir: string
  readonly #backend: RegistryBackend
  readonly #mutex = new KeyedMutex()

  constructor(dir: string, backend: RegistryBackend) {
    this.#dir = dir
    this.#backend = backend
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
      await this.#publish(repository, manifest, merged, dir)
      await writeFileAtomic(join(dir, 'merged.json'), bytes)
      return merged
    })
  }

  async merged(repository: string, manifest: Digest): Promise<MergedProfile | undefined> {
    let bytes: Buffer
    try {
      bytes = await readFile(join(this.#imageDir(repository, manifest), 'merged.json'))
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined
      throw err
    }
    return { digest: sha256Of(bytes), profile: parseProfile(bytes), bytes }
  }

  async current(repository: string, manifest: Digest) {
    const merged = await this.merged(repository, manifest)
    return merged && { digest: merged.digest, order: merged.profile.entries.map((e) => e.path) }
  }

  async #runs(dir: string): Promise<Profile[]> {
    const files = (await readdir(join(dir, 'runs'))).filter((f) => f.endsWith('.json')).sort()
    return Promise.all(files.map(async (f) => parseProfile(await readFile(join(dir, 'runs', f)))))
  }

  /** The profile as a referrer manifest of the image; the previous one is removed from the registry. */
  async #publish(repository: string, subject: Descriptor, merged: MergedProfile, dir: string) {
    const backend = this.#backend
    await putBlob(backend, repository, sha256Of(EMPTY_CONFIG), EMPTY_CONFIG)
    await putBlob(backend, repository, merged.digest, merged.bytes)
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
        },
      },
    })
    const published = (await readJsonIfExists(join(dir, 'published.json'))) as
      { manifest?: Digest } | undefined
    if (published?.manifest && published.manifest !== digest) {
      await backend.deleteManifest(repository, published.manifest)
    }
    await writeFileAtomic(join(dir, 'published.json'), JSON.stringify({ manifest: digest }))
  }

  #imageDir(repository: string, manifest: Digest): string {
    return join(this.#dir, encodeURIComponent(repository), digestHex(manifest))
  }
}
