import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isNotFound, readIfExists } from './atomic-files.ts'
import type { StoreLayout } from './store-layout.ts'
import { UPLOAD_ID } from './store-layout.ts'
import { parseUploadState } from './upload-state.ts'

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
 *
 * Upload sessions are recovered by `recoverUploads` when the sessions open (upload-sessions.ts).
 * Blobs and links need no repair: both only ever appear by rename of complete files.
 */
export async function recoverStore(layout: StoreLayout): Promise<{ tmpRemoved: number }> {
  for (const dir of [layout.blobsDir, layout.repositoriesDir, layout.uploadsDir, layout.tmpDir]) {
    await mkdir(dir, { recursive: true })
  }
  const tmp = await readdir(layout.tmpDir)
  await Promise.all(
    tmp.map((name) => rm(join(layout.tmpDir, name), { recursive: true, force: true })),
  )
  return { tmpRemoved: tmp.length }
}

/** A session a previous process left that can be resumed. */
export interface FoundUpload {
  id: string
  client: string
  /** Its last activity: the later of its start and its data file's mtime. */
  lastActive: number
}

/**
 * The upload sessions under uploads/ that can be resumed. Removes broken ones (no or unreadable
 * state.json, no data file: a crash while creating or finishing them, or a directory the store did
 * not make) and those idle for more than `idleTtlMs` (`expired`, counted in `removed` too).
 * The offset of a kept session is whatever reached its data file.
 */
export async function recoverUploads(
  layout: StoreLayout,
  options: { idleTtlMs: number; now?: number },
): Promise<{ live: FoundUpload[]; removed: number; expired: number }> {
  const now = options.now ?? Date.now()
  await mkdir(layout.uploadsDir, { recursive: true })
  const live: FoundUpload[] = []
  let removed = 0
  let expired = 0
  for (const id of await readdir(layout.uploadsDir)) {
    const found = await inspectUpload(layout, id)
    if (found && now - found.lastActive <= options.idleTtlMs) {
      live.push(found)
      continue
    }
    if (found) expired++
    await rm(layout.upload(id), { recursive: true, force: true })
    removed++
  }
  return { live, removed, expired }
}

async function inspectUpload(layout: StoreLayout, id: string): Promise<FoundUpload | undefined> {
  if (!UPLOAD_ID.test(id)) return undefined
  const state = parseUploadState(await readIfExists(layout.uploadState(id)))
  if (!state) return undefined
  try {
    const data = await stat(layout.uploadData(id))
    if (!data.isFile()) return undefined
    return { id, client: state.client ?? '', lastActive: Math.max(state.startedAt, data.mtimeMs) }
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}
