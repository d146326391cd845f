import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from './cleanup.ts'

/** A fresh temporary directory, removed when the test file ends (after its processes stopped). */
export async function tmpDir(prefix = 'thaw-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onCleanup('dirs', async () => {
    for (const point of fuseMountsUnder(dir)) detach(point)
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

/** FUSE mountpoints under `dir` (a test that failed may leave one; rm would fail with EBUSY). */
function fuseMountsUnder(dir: string): string[] {
  const out: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ')
    const point = left?.split(' ')[4]?.replace(/\\040/g, ' ')
    if (point?.startsWith(`${dir}/`) && right?.startsWith('fuse')) out.push(point)
  }
  return out.sort().reverse() // deepest first
}

function detach(point: string): void {
  try {
    execFileSync('fusermount', ['-u', '-z', point], { stdio: 'ignore' })
  } catch {
    // not ours to report: rm says what is left
  }
}
