import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { freePort, startProcess, type TestProcess } from './processes.ts'
import { tmpDir } from './tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

export interface EdgeProcess {
  url: string
  store: string
  process: TestProcess
}

/**
 * `thaw edge` as a process of its own (its memory is its own: /proc/<pid>/status), on a free port
 * with a fresh store and, when given, a config file (registry-edge/README.md). Stopped when the
 * test file ends. `thaw` runs another checkout's edge (measurements of an older commit).
 */
export async function startEdgeProcess(
  options: { config?: Record<string, unknown>; thaw?: string } = {},
): Promise<EdgeProcess> {
  const store = await tmpDir('thaw-edge-store-')
  const port = await freePort()
  const args = ['edge', '--port', String(port), '--store', join(store, 'store')]
  if (options.config !== undefined) {
    const file = join(store, 'edge.json')
    await writeFile(file, JSON.stringify(options.config))
    args.push('--config', file)
  }
  const process = startProcess(options.thaw ?? THAW, args)
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://127.0.0.1:${port}`, store, process }
}
