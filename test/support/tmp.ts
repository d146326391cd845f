import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { detachStaleMount, fuseMountsUnder } from '../../host/mount/fuse-mount.ts'
import { onCleanup } from './cleanup.ts'

/** A fresh temporary directory, removed when the test file ends (after its processes stopped). */
export async function tmpDir(prefix = 'thaw-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onCleanup('dirs', async () => {
    // A test that failed may leave a FUSE mount here: rm would fail with EBUSY. Deepest first.
    for (const point of (await fuseMountsUnder(dir)).sort().reverse()) await detachStaleMount(point)
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}
