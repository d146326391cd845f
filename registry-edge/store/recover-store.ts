import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isNotFound, readIfExists } from './atomic-files.ts'
import type { StoreLayout } from './store-layout.ts'
import { UPLOAD_ID } from './store-layout.ts'
import { parseUploadState } from './upload-sessions.ts'

export interface RecoveryReport {
  tmpRemoved: number
  uploadsRemoved: number
  uploadsKept: number
}

/**
 * Brings a store back to a clean state at startup, whatever moment the last process died at:
 *
 * 1. Creates the top-level directories if missing.
 * 2. Removes everything in tmp/: temp files of atomic writes that never got renamed. They were
 *    never visible, so removing them loses nothing.
 * 3. Removes upload sessions that are broken (no or unreadable state.json, no data file: a crash
 *    while creating or finishing them) or older than `uploadTtlMs`. Other sessions are kept so
 *    clients can resume them; their offset is whatever reached the data file.
 *
 * Blobs and links need no repair: both only ever appear by rename of complete files.
 */
export async function recoverStore(
  layout: StoreLayout,
  options: { uploadTtlMs: number; now?: number },
): Promise<RecoveryReport> {
  const now = options.now ?? Date.now()
  for (const dir of [layout.blobsDir, layout.repositoriesDir, layout.uploadsDir, layout.tmpDir]) {
    await mkdir(dir, { recursive: true })
  }
  const tmp = await readdir(layout.tmpDir)
  await Promise.all(tmp.map((name) => rm(join(layout.tmpDir, name), { recursive: true, force: true })))

  let uploadsRemoved = 0
  let uploadsKept = 0
  for (const id of await readdir(layout.uploadsDir)) {
    if (await isLiveUpload(layout, id, now - options.uploadTtlMs)) {
      uploadsKept++
    } else {
      await rm(layout.upload(id), { recursive: true, force: true })
      uploadsRemoved++
    }
  }
  return { tmpRemoved: tmp.length, uploadsRemoved, uploadsKept }
}

async function isLiveUpload(layout: StoreLayout, id: string, oldest: number): Promise<boolean> {
  if (!UPLOAD_ID.test(id)) return false
  const state = parseUploadState(await readIfExists(layout.uploadState(id)))
  if (!state || state.startedAt < oldest) return false
  try {
    return (await stat(layout.uploadData(id))).isFile()
  } catch (err) {
    if (isNotFound(err)) return false
    throw err
  }
}
