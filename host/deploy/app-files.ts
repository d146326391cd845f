import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  ALWAYS_IGNORED,
  DEFAULT_IGNORED,
  parseIgnoreRules,
  type IgnoreRules,
} from './ignore-rules.ts'

/** One regular file for the app layer, its path relative to the app folder. */
export interface AppFile {
  path: string
  data: Buffer
  executable: boolean
}

/**
 * The ignore rules of an app folder: thaw's fixed ones, then its `.funcignore` (or, without one,
 * thaw's defaults: editor folders and tests), then `extra` (a TypeScript app's sources, its stale
 * build output).
 */
export async function readIgnoreRules(appDir: string, extra: string[] = []): Promise<IgnoreRules> {
  let own = DEFAULT_IGNORED
  try {
    own = (await readFile(join(appDir, '.funcignore'), 'utf8')).split(/\r?\n/)
  } catch {
    // No .funcignore: the defaults.
  }
  return parseIgnoreRules([...ALWAYS_IGNORED, ...own, '.funcignore', ...extra])
}

/**
 * Every file of the app folder that `rules` keep, symlinks followed (a file a link points to is
 * copied; a broken link is left out), in no particular order.
 */
export async function collectAppFiles(appDir: string, rules: IgnoreRules): Promise<AppFile[]> {
  const out: AppFile[] = []
  await walk(appDir, '', (rel) => rules.ignores(rel.path, rel.isDirectory), out)
  return out
}

/**
 * Walks `dir` (files under `prefix`), following symlinks; `skip` prunes directories and files.
 * A folder reached again through a link (a cycle, or a second link to it) is walked once.
 * Shared with the dependency collector, which skips nested node_modules.
 */
export async function walk(
  root: string,
  prefix: string,
  skip: (entry: { path: string; isDirectory: boolean }) => boolean,
  out: AppFile[],
  seen: Set<string> = new Set(),
): Promise<void> {
  const here = await realpath(join(root, prefix))
  if (seen.has(here)) return
  seen.add(here)
  const names = await readdir(join(root, prefix))
  for (const name of names) {
    const path = prefix ? `${prefix}/${name}` : name
    const full = join(root, path)
    let info = await lstat(full)
    if (info.isSymbolicLink()) {
      try {
        info = await stat(full)
      } catch {
        continue // broken link
      }
    }
    const isDirectory = info.isDirectory()
    if (skip({ path, isDirectory })) continue
    if (isDirectory) await walk(root, path, skip, out, seen)
    else if (info.isFile())
      out.push({ path, data: await readFile(full), executable: (info.mode & 0o111) !== 0 })
  }
}
