import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { z } from 'zod'

/** Records by key, kept in memory and written through to one JSON file. */
export interface JsonRecordsFile<T> {
  get(key: string): T | undefined
  /** Written through (serialized; a crash leaves the old or the new file, never half of one). */
  set(key: string, value: T): Promise<void>
  delete(key: string): Promise<void>
}

/**
 * `{"version":1,"records":{"<key>":T}}` in `file`, mode 0600. A missing file, or one that does
 * not parse with `schema`, opens empty (what it held is state that can be made again: timer
 * statuses, the function lists the host learned); the next write replaces it.
 */
export async function openJsonRecordsFile<T>(
  file: string,
  schema: z.ZodType<T>,
): Promise<JsonRecordsFile<T>> {
  const fileSchema = z.object({ version: z.literal(1), records: z.record(z.string(), schema) })
  const text = await readFile(file, 'utf8').catch(() => undefined)
  const parsed = text === undefined ? undefined : fileSchema.safeParse(parseJson(text))
  const records = new Map<string, T>(
    Object.entries(parsed?.success ? parsed.data.records : {}) as [string, T][],
  )
  let writing: Promise<void> = Promise.resolve()
  const persist = () => {
    const body = `${JSON.stringify({ version: 1, records: Object.fromEntries(records) }, null, 2)}\n`
    writing = writing
      .catch(() => {})
      .then(async () => {
        await mkdir(dirname(file), { recursive: true })
        const tmp = `${file}.tmp-${process.pid}`
        await writeFile(tmp, body, { mode: 0o600 })
        await rename(tmp, file)
      })
    return writing
  }
  return {
    get: (key) => records.get(key),
    set(key, value) {
      records.set(key, value)
      return persist()
    },
    delete(key) {
      if (!records.delete(key)) return Promise.resolve()
      return persist()
    },
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
