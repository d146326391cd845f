import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

const dirs: string[] = []
let hooked = false

/** A fresh temporary directory, removed when the test file ends. */
export async function tmpDir(prefix = 'thaw-test-'): Promise<string> {
  if (!hooked) {
    hooked = true
    afterAll(async () => {
      await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
    })
  }
  const dir = await mkdtemp(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}
