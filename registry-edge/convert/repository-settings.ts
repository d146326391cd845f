import { join } from 'node:path'
import { z } from 'zod'
import { repositorySettingsSchema, type RepositorySettings } from '../../runtime/artifact/index.ts'
import { ThawError } from '../../runtime/errors.ts'
import { readJsonIfExists, writeFileAtomic } from './atomic-json.ts'

/**
 * Per-repository settings (`_thaw/settings`), persisted as `<dir>/<encoded repository>.json`; a
 * repository without a file has the edge's defaults (config `conversion.streaming`).
 */
export class RepositorySettingsStore {
  readonly #dir: string
  readonly #defaults: RepositorySettings

  constructor(dir: string, defaults: RepositorySettings) {
    this.#dir = dir
    this.#defaults = defaults
  }

  async get(repository: string): Promise<RepositorySettings> {
    const stored = await readJsonIfExists(this.#file(repository))
    return stored === undefined ? { ...this.#defaults } : repositorySettingsSchema.parse(stored)
  }

  async put(repository: string, settings: RepositorySettings): Promise<RepositorySettings> {
    await writeFileAtomic(this.#file(repository), JSON.stringify(settings))
    return settings
  }

  #file(repository: string): string {
    return join(this.#dir, `${encodeURIComponent(repository)}.json`)
  }
}

/** Settings from an untrusted body (PUT _thaw/settings): `SETTINGS_INVALID`, a user fault. */
export function parseRepositorySettings(value: unknown): RepositorySettings {
  const result = repositorySettingsSchema.safeParse(value)
  if (!result.success) {
    throw new ThawError('SETTINGS_INVALID', `settings: ${z.prettifyError(result.error)}`, {
      fault: 'user',
    })
  }
  return result.data
}
