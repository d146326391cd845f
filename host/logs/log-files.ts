import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HostLogger } from '../log/host-logger.ts'
import { RECORD_LEVELS, type LogRecord } from './log-record.ts'

/**
 * Each app's log ring on disk, so it outlives a host restart: `<dir>/<app>.ndjson`, one record a
 * line, appended in the background (never on the request path): the lines of BATCH_MS are
 * written together, so a busy app costs one append per batch, not one per request (a host
 * killed outright loses at most that much of the file; the ring in memory has it all). When a
 * file has grown past `compactBytes` it is rewritten (a temporary file renamed over it) with
 * what the app's ring keeps then, so a file holds at most about `compactBytes` plus one batch.
 * A line cut by a crash, or that is not a record, is skipped when read. A disk that fails is
 * said once in the host's log; the rings in memory go on.
 */
export class LogFiles {
  readonly #files = new Map<string, AppLogFile>()
  /** Files being removed (a deleted app): a new file of the same name waits for it. */
  readonly #removing = new Map<string, Promise<void>>()
  #warned = false

  private constructor(
    readonly dir: string,
    private readonly o: { compactBytes: number; logger?: HostLogger },
  ) {}

  /** Opens `dir` (made if missing) and reads every app's records, oldest first. */
  static async open(
    dir: string,
    o: { compactBytes: number; logger?: HostLogger },
  ): Promise<{ files: LogFiles; records: Map<string, LogRecord[]> }> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const files = new LogFiles(dir, o)
    const records = new Map<string, LogRecord[]>()
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.ndjson')) continue
      const text = await readFile(join(dir, name), 'utf8')
      const app = name.slice(0, -'.ndjson'.length)
      const parsed = text.split('\n').flatMap((line) => recordOf(line, app))
      records.set(app, parsed)
      // A last line cut by a crash is ended first, so the next record starts a line of its own.
      const cut = text.length > 0 && !text.endsWith('\n')
      files.#files.set(app, files.#file(app, Buffer.byteLength(text), cut))
    }
    return { files, records }
  }

  /** Queues the record for the app's file; `kept` gives the app's ring when the file is rewritten. */
  append(record: LogRecord, kept: () => LogRecord[]): void {
    let file = this.#files.get(record.app)
    if (!file) this.#files.set(record.app, (file = this.#file(record.app, 0)))
    file.append(record, kept)
  }

  /** Removes the app's file (the app was deleted), after what is queued for it. */
  forget(app: string): void {
    const file = this.#files.get(app)
    this.#files.delete(app)
    const removed = (file?.settled() ?? Promise.resolve())
      .then(() => rm(join(this.dir, `${app}.ndjson`), { force: true }))
      .catch((err: unknown) => this.#failed(err))
    this.#removing.set(app, removed)
    void removed.then(() => {
      if (this.#removing.get(app) === removed) this.#removing.delete(app)
    })
  }

  /** Waits until every queued record is written. */
  async settled(): Promise<void> {
    await Promise.all([...this.#files.values()].map((f) => f.settled()))
    await Promise.all(this.#removing.values())
  }

  #file(app: string, bytes: number, cut = false): AppLogFile {
    return new AppLogFile({
      path: join(this.dir, `${app}.ndjson`),
      bytes,
      cut,
      compactBytes: this.o.compactBytes,
      after: this.#removing.get(app) ?? Promise.resolve(),
      failed: (err) => this.#failed(err),
    })
  }

  #failed(err: unknown) {
    if (this.#warned) return
    this.#warned = true
    this.o.logger?.log('warn', `app logs are kept in memory only: ${(err as Error).message}`, {
      dir: this.dir,
    })
  }
}

/** How long records gather before they are appended together. */
const BATCH_MS = 50

class AppLogFile {
  #queue: string[] = []
  #writing: Promise<void> | undefined
  #kept: () => LogRecord[] = () => []
  #bytes: number
  #cut: boolean
  /** Rewritten past this: compactBytes, or twice what the last rewrite wrote if that was more. */
  #limit: number

  constructor(
    private readonly o: {
      path: string
      bytes: number
      /** The file ends in a cut line: the first write ends it. */
      cut: boolean
      compactBytes: number
      after: Promise<void>
      failed: (err: unknown) => void
    },
  ) {
    this.#bytes = o.bytes
    this.#cut = o.cut
    this.#limit = o.compactBytes
  }

  append(record: LogRecord, kept: () => LogRecord[]) {
    this.#queue.push(`${JSON.stringify(record)}\n`)
    this.#kept = kept
    this.#writing ??= sleep(BATCH_MS)
      .then(() => this.#write())
      .finally(() => (this.#writing = undefined))
  }

  settled(): Promise<void> {
    return this.#writing ?? Promise.resolve()
  }

  async #write() {
    await this.o.after
    while (this.#queue.length > 0) {
      if (this.#cut) this.#queue.unshift('\n')
      this.#cut = false
      const batch = this.#queue.splice(0).join('')
      const size = Buffer.byteLength(batch)
      try {
        if (this.#bytes + size <= this.#limit) {
          await appendFile(this.o.path, batch, { mode: 0o600 })
          this.#bytes += size
          continue
        }
        // The ring holds every record queued so far (those it still keeps): it replaces the file.
        this.#queue = []
        const kept = this.#kept()
          .map((r) => `${JSON.stringify(r)}\n`)
          .join('')
        const tmp = `${this.o.path}.tmp`
        await writeFile(tmp, kept, { mode: 0o600 })
        await rename(tmp, this.o.path)
        this.#bytes = Buffer.byteLength(kept)
        this.#limit = Math.max(this.o.compactBytes, 2 * this.#bytes)
      } catch (err) {
        this.o.failed(err)
      }
    }
  }
}

/** The record on one line of an app's file, or none (a line cut by a crash, another app's). */
function recordOf(line: string, app: string): LogRecord[] {
  if (!line) return []
  let r: Partial<LogRecord>
  try {
    r = JSON.parse(line) as Partial<LogRecord>
  } catch {
    return []
  }
  const ok =
    typeof r === 'object' &&
    r !== null &&
    Number.isInteger(r.seq) &&
    typeof r.time === 'string' &&
    r.app === app &&
    typeof r.message === 'string' &&
    RECORD_LEVELS.includes(r.level!) &&
    typeof r.source === 'string'
  return ok ? [r as LogRecord] : []
}
