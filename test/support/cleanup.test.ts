import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isAlive, run } from './processes.ts'
import { tmpDir } from './tmp.ts'

const ROOT = join(import.meta.dirname, '..', '..')

describe('test cleanup', () => {
  it('stops processes and removes temp dirs that a test file created inside beforeAll', async () => {
    const report = join(await tmpDir('thaw-cleanup-report-'), 'report.json')
    await run(
      join(ROOT, 'node_modules', '.bin', 'vitest'),
      ['run', '--project', 'unit', 'test/support/fixtures/cleanup-fixture.test.ts'],
      { cwd: ROOT, env: { ...process.env, THAW_CLEANUP_FIXTURE_REPORT: report } },
    )
    const { dir, pid } = JSON.parse(await readFile(report, 'utf8')) as { dir: string; pid: number }
    expect(isAlive(pid)).toBe(false)
    await expect(access(dir)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
