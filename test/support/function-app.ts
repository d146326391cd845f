import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { tmpDir } from './tmp.ts'

const NODE_MODULES = resolve(import.meta.dirname, '../../node_modules')

/**
 * A function app in a fresh temporary folder: the given files (host.json defaults to version
 * 2.0), and node_modules linked to thaw's, so `@azure/functions` resolves as in a real app.
 */
export async function makeApp(files: Record<string, string>): Promise<string> {
  const dir = await tmpDir('thaw-app-')
  const all = { 'host.json': '{ "version": "2.0" }', ...files }
  for (const [name, text] of Object.entries(all)) {
    await mkdir(dirname(join(dir, name)), { recursive: true })
    await writeFile(join(dir, name), text)
  }
  await symlink(NODE_MODULES, join(dir, 'node_modules'), 'dir')
  return dir
}
