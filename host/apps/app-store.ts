import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import {
  DEFAULT_LIMITS,
  parseStoredApps,
  type App,
  type AppInput,
  type AppPatch,
} from './app-spec.ts'
import {
  checkOperatorLimits,
  defaultOperatorLimits,
  type OperatorLimits,
} from './operator-limits.ts'

export interface AppStore {
  list(): App[]
  get(name: string): App | undefined
  /** Creates or replaces; returns the app and whether it was new. Throws APP_OVER_LIMIT. */
  put(input: AppInput): Promise<{ app: App; created: boolean }>
  /** Throws APP_NOT_FOUND, APP_OVER_LIMIT. */
  update(name: string, patch: AppPatch): Promise<App>
  /** False when there was no such app. */
  delete(name: string): Promise<boolean>
  onChange(listener: (name: string, app: App | undefined) => void): void
}

/**
 * The host's apps, kept in memory and in `<stateDir>/apps.json` ({"version":1,"apps":[...]}).
 * Every change writes the whole file to a temporary name and renames it over the old one, so a
 * host killed mid-write leaves the old or the new file, never half of one. Writes are serialized.
 * An app whose limits go past the operator's is refused before anything changes.
 */
export async function openAppStore(
  stateDir: string,
  options: { now?: () => Date; operatorLimits?: OperatorLimits } = {},
): Promise<AppStore> {
  const now = options.now ?? (() => new Date())
  const operator = options.operatorLimits ?? defaultOperatorLimits()
  await mkdir(stateDir, { recursive: true })
  const file = join(stateDir, 'apps.json')
  const apps = new Map((await readApps(file)).map((a) => [a.name, a]))
  const listeners: ((name: string, app: App | undefined) => void)[] = []
  let writing: Promise<void> = Promise.resolve()
  const persist = () => {
    const body = JSON.stringify({ version: 1, apps: [...apps.values()] }, null, 2)
    writing = writing.then(async () => {
      const tmp = `${file}.tmp-${process.pid}`
      await writeFile(tmp, `${body}\n`, { mode: 0o600 })
      await rename(tmp, file)
    })
    return writing
  }
  const changed = (name: string) => {
    for (const l of listeners) l(name, apps.get(name))
  }
  return {
    list: () => [...apps.values()].sort((a, b) => a.name.localeCompare(b.name)),
    get: (name) => apps.get(name),
    async put(input) {
      const old = apps.get(input.name)
      const at = now().toISOString()
      const app: App = {
        name: input.name,
        image: input.image,
        settings: input.settings ?? {},
        keys: input.keys ?? {},
        limits: { ...DEFAULT_LIMITS, ...input.limits },
        createdAt: old?.createdAt ?? at,
        updatedAt: at,
      }
      checkOperatorLimits(app.name, app.limits, operator)
      apps.set(app.name, app)
      await persist()
      changed(app.name)
      return { app, created: !old }
    },
    async update(name, patch) {
      const old = apps.get(name)
      if (!old) throw new ThawError('APP_NOT_FOUND', `no app named "${name}"`, { fault: 'user' })
      const app: App = {
        ...old,
        image: patch.image ?? old.image,
        settings: patch.settings ?? old.settings,
        keys: patch.keys ?? old.keys,
        limits: { ...old.limits, ...patch.limits },
        updatedAt: now().toISOString(),
      }
      checkOperatorLimits(name, app.limits, operator)
      apps.set(name, app)
      await persist()
      changed(name)
      return app
    },
    async delete(name) {
      if (!apps.delete(name)) return false
      await persist()
      changed(name)
      return true
    },
    onChange: (l) => void listeners.push(l),
  }
}

async function readApps(file: string): Promise<App[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  try {
    return parseStoredApps(JSON.parse(text))
  } catch (err) {
    throw new ThawError('APPS_FILE_INVALID', `${file}: ${(err as Error).message}`, {
      fault: 'user',
      cause: err,
    })
  }
}
