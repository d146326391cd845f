import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  parseConversionStatus,
  type ConversionState,
  type ConversionStatus,
} from '../../runtime/artifact/index.ts'
import { digestHex, type Digest } from '../../runtime/oci/index.ts'
import { readJsonIfExists, writeFileAtomic } from './atomic-json.ts'

/** A conversion's record: its status and the repository it belongs to. */
export interface ConversionRecord {
  repository: string
  status: ConversionStatus
}

/**
 * Conversion status per (repository, manifest), persisted so a restarted edge knows what it
 * converted and redoes what it was converting when it stopped:
 *
 *   <dir>/<encodeURIComponent(repository)>/<manifest hex>.json   ConversionStatus JSON
 *
 * (`apps/hello` → `apps%2Fhello`: one flat directory per repository, no clash with nested names.)
 */
export class ConversionStates {
  readonly #dir: string

  constructor(dir: string) {
    this.#dir = dir
  }

  async get(repository: string, manifest: Digest): Promise<ConversionStatus | undefined> {
    const value = await readJsonIfExists(this.#file(repository, manifest))
    return value === undefined ? undefined : parseConversionStatus(value)
  }

  /** Records a new state, keeping the newest artifact's fields unless `update` replaces them. */
  async set(
    repository: string,
    manifest: Digest,
    state: ConversionState,
    update: Partial<Omit<ConversionStatus, 'manifest' | 'state' | 'updatedAt'>> = {},
  ): Promise<ConversionStatus> {
    const previous = await this.get(repository, manifest)
    const status: ConversionStatus = {
      manifest,
      state,
      ...(previous?.artifact !== undefined && {
        artifact: previous.artifact,
        generation: previous.generation,
        profile: previous.profile,
      }),
      ...update,
      updatedAt: new Date().toISOString(),
    }
    if (state === 'converted' || state === 'converting' || state === 'pending') {
      delete status.reason
      delete status.code
    }
    await writeFileAtomic(this.#file(repository, manifest), JSON.stringify(status))
    return status
  }

  /** Every record whose state is one of `states` (startup: what was left unfinished). */
  async list(states: readonly ConversionState[]): Promise<ConversionRecord[]> {
    const out: ConversionRecord[] = []
    for (const repoDir of await readdirOrEmpty(this.#dir)) {
      const repository = decodeURIComponent(repoDir)
      for (const file of await readdirOrEmpty(join(this.#dir, repoDir))) {
        if (!/^[0-9a-f]{64}\.json$/.test(file)) continue
        const status = await this.get(repository, `sha256:${file.slice(0, 64)}` as Digest)
        if (status && states.includes(status.state)) out.push({ repository, status })
      }
    }
    return out
  }

  #file(repository: string, manifest: Digest): string {
    return join(this.#dir, encodeURIComponent(repository), `${digestHex(manifest)}.json`)
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return []
    throw err
  }
}
