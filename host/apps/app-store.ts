import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ThawError } from '../../runtime/errors.ts'
import {
  inputChange,
  parseStoredApps,
  patchChange,
  settingsProblems,
  type App,
  type AppInput,
  type AppPatch,
} from './app-spec.ts'
import {
  checkOperatorLimits,
  defaultOperatorLimits,
  type OperatorLimits,
} from './operator-limits.ts'
import {
  applyChange,
  boundedHistory,
  type AppRecord,
  type Revision,
  type RevisionChange,
  type RevisionFunction,
} from './revision.ts'

/** A revision made from a change and checked, not stored yet (rollout.ts gates it first). */
export interface Draft {
  name: string
  /** The active revision it was made from; undefined for a new app. */
  base: number | undefined
  /** Its number is provisional: the store gives the next free one when it stores it. */
  revision: Revision
  /** The app as it would be with this revision active. */
  app: App
  created: boolean
}

export interface AppStore {
  list(): App[]
  /** The app as its active revision makes it. */
  get(name: string): App | undefined
  /** The app's revisions (newest first) and which one is active. */
  record(name: string): AppRecord | undefined
  /**
   * The revision `change` makes of the active one (of revision `from` for a rollback), checked:
   * settings, the operator's limits. Throws APP_NOT_FOUND (unless `create`), REVISION_NOT_FOUND,
   * APP_INVALID, APP_OVER_LIMIT.
   */
  draft(name: string, change: RevisionChange, o?: { from?: number; create?: boolean }): Draft
  /**
   * Stores the draft as the newest revision and makes it the active one (what the gate learnt:
   * its functions). Throws REVISION_CONFLICT when the app changed since the draft was made.
   */
  commit(draft: Draft, loaded?: { functions: RevisionFunction[] }): Promise<App>
  /** Stores the draft as a failed revision; the active one keeps serving. */
  recordFailure(draft: Draft, failed: { error: string; logs: string[] }): Promise<Revision>
  /** Creates, or changes the fields given (the others carry over); says whether it was new. */
  put(input: AppInput): Promise<{ app: App; created: boolean }>
  /** Throws APP_NOT_FOUND, APP_OVER_LIMIT. */
  update(name: string, patch: AppPatch): Promise<App>
  /** False when there was no such app. */
  delete(name: string): Promise<boolean>
  onChange(listener: (name: string, app: App | undefined) => void): void
}

/**
 * The host's apps and their revisions, in memory and in `<stateDir>/apps.json`
 * (`{"version":2,"apps":[{name,createdAt,active,revisions:[...]}]}`, newest revision first, the
 * last REVISION_HISTORY kept). Every change writes the whole file to a temporary name and renames
 * it over the old one, so a host killed mid-write leaves the old or the new file, never half of
 * one; memory changes (and listeners hear of it) only once the file is written. Changes are
 * serialized. A version 1 file (one record per app) is read as revision 1 of each app.
 */
export async function openAppStore(
  stateDir: string,
  options: { now?: () => Date; operatorLimits?: OperatorLimits } = {},
): Promise<AppStore> {
  const now = options.now ?? (() => new Date())
  const operator = options.operatorLimits ?? defaultOperatorLimits()
  await mkdir(stateDir, { recursive: true })
  const file = join(stateDir, 'apps.json')
  let records = new Map((await readRecords(file)).map((r) => [r.name, r]))
  const views = new Map<string, App>()
  const listeners: ((name: string, app: App | undefined) => void)[] = []
  let queue: Promise<unknown> = Promise.resolve()

  const view = (name: string): App | undefined => {
    const record = records.get(name)
    if (!record) return undefined
    let app = views.get(name)
    if (app?.revision !== record.active) {
      app = appOf(record, activeOf(record))
      views.set(name, app)
    }
    return app
  }

  /** Runs `change` on a copy of the records after every earlier change, writes, then switches. */
  const mutate = <T>(name: string, change: (next: Map<string, AppRecord>) => T): Promise<T> => {
    const run = queue.then(async () => {
      const next = new Map(records)
      const result = change(next)
      const body = JSON.stringify({ version: 2, apps: [...next.values()] }, null, 2)
      const tmp = `${file}.tmp-${process.pid}`
      await writeFile(tmp, `${body}\n`, { mode: 0o600 })
      await rename(tmp, file)
      records = next
      views.delete(name)
      const app = view(name)
      for (const l of listeners) l(name, app)
      return result
    })
    queue = run.catch(() => {})
    return run
  }

  const store: AppStore = {
    list: () => [...records.keys()].sort((a, b) => a.localeCompare(b)).map((n) => view(n)!),
    get: view,
    record: (name) => records.get(name),
    draft(name, change, o = {}) {
      const record = records.get(name)
      if (!record && !o.create) notFound(name)
      const active = record && activeOf(record)
      let from: Revision | undefined
      if (o.from !== undefined) {
        from = record?.revisions.find((r) => r.number === o.from)
        if (!from) {
          throw new ThawError('REVISION_NOT_FOUND', `app "${name}" has no revision ${o.from}`, {
            fault: 'user',
          })
        }
      }
      const content = applyChange(active, change, from)
      const problems = settingsProblems(content.settings)
      if (problems.length > 0) {
        throw new ThawError('APP_INVALID', `invalid app: ${problems.join('; ')}`, { fault: 'user' })
      }
      checkOperatorLimits(name, content.limits, operator)
      const revision: Revision = {
        number: (record?.revisions[0]?.number ?? 0) + 1,
        createdAt: now().toISOString(),
        cause: change.cause,
        ...content,
      }
      const shell = record ?? { name, createdAt: revision.createdAt, active: 0, revisions: [] }
      return { name, base: active?.number, revision, app: appOf(shell, revision), created: !record }
    },
    commit(draft, loaded) {
      return mutate(draft.name, (next) => {
        const record = next.get(draft.name)
        if (record?.active !== draft.base) {
          const what = record ? `revision ${record.active} is active now` : 'it was deleted'
          throw new ThawError(
            'REVISION_CONFLICT',
            `app "${draft.name}" changed meanwhile (${what}); try again`,
            { fault: 'user' },
          )
        }
        const revision = { ...numbered(draft, record), ...loaded }
        next.set(draft.name, stored(draft, record, revision, revision.number))
        return revision
      }).then(() => view(draft.name)!)
    },
    async recordFailure(draft, failed) {
      // A new app whose first revision failed is not made: there is nothing to keep serving.
      if (!records.has(draft.name)) return { ...draft.revision, failed }
      return mutate(draft.name, (next) => {
        const record = next.get(draft.name)
        if (!record) return { ...draft.revision, failed }
        const revision = { ...numbered(draft, record), failed }
        next.set(draft.name, stored(draft, record, revision, record.active))
        return revision
      })
    },
    async put(input) {
      const existed = records.has(input.name)
      const draft = store.draft(input.name, inputChange(input, existed), { create: true })
      return { app: await store.commit(draft), created: !existed }
    },
    async update(name, patch) {
      return store.commit(store.draft(name, patchChange(patch)))
    },
    async delete(name) {
      if (!records.has(name)) return false
      await mutate(name, (next) => next.delete(name))
      return true
    },
    onChange: (l) => void listeners.push(l),
  }
  return store
}

function activeOf(record: AppRecord): Revision {
  const active = record.revisions.find((r) => r.number === record.active)
  // boundedHistory always keeps the active revision; a file edited by hand may not.
  if (!active)
    throw new ThawError(
      'APPS_FILE_INVALID',
      `app "${record.name}": its active revision ${record.active} is not in its history`,
      { fault: 'user' },
    )
  return active
}

function appOf(record: Pick<AppRecord, 'name' | 'createdAt'>, r: Revision): App {
  const { image, settings, keys, limits } = r
  return {
    name: record.name,
    image,
    settings,
    keys,
    limits,
    createdAt: record.createdAt,
    updatedAt: r.createdAt,
    revision: r.number,
  }
}

function numbered(draft: Draft, record: AppRecord | undefined): Revision {
  return { ...draft.revision, number: (record?.revisions[0]?.number ?? 0) + 1 }
}

function stored(
  draft: Draft,
  record: AppRecord | undefined,
  revision: Revision,
  active: number,
): AppRecord {
  return {
    name: draft.name,
    createdAt: record?.createdAt ?? revision.createdAt,
    active,
    revisions: boundedHistory(record?.revisions ?? [], revision, active),
  }
}

function notFound(name: string): never {
  throw new ThawError('APP_NOT_FOUND', `no app named "${name}"`, { fault: 'user' })
}

async function readRecords(file: string): Promise<AppRecord[]> {
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
