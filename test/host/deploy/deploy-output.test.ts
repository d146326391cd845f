import { describe, expect, it } from 'vitest'
import { deployReporter } from '../../../host/deploy/deploy-output.ts'
import type { Descriptor } from '../../../runtime/oci/schemas.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'

const blob = (text: string, size: number): Descriptor => ({
  mediaType: 'application/octet-stream',
  digest: sha256Of(Buffer.from(text)),
  size,
})
const base = blob('base', 3 * 1024 * 1024)
const app = blob('app', 1024 * 1024)

function run(isTTY: boolean): string {
  let out = ''
  const report = deployReporter({ isTTY, columns: 80, write: (t: string) => (out += t) })
  const total = base.size + app.size
  report({
    type: 'push',
    progress: {
      blob: base,
      bytes: base.size,
      doneBytes: base.size,
      totalBytes: total,
      finished: 'reused',
    },
  })
  report({
    type: 'push',
    progress: {
      blob: app,
      bytes: 512 * 1024,
      doneBytes: base.size + 512 * 1024,
      totalBytes: total,
    },
  })
  report({
    type: 'push',
    progress: {
      blob: app,
      bytes: app.size,
      doneBytes: total,
      totalBytes: total,
      finished: 'uploaded',
    },
  })
  report({ type: 'pushed', reference: 'r/apps/x:latest', uploaded: [app], reused: [base] })
  return out
}

describe('deployReporter', () => {
  it('draws one bar redrawn in place on a terminal, ending at 100%', () => {
    const out = run(true)
    const frames = out.split('\n')[0]!.split('\r').filter(Boolean)
    expect(frames).toHaveLength(3)
    expect(frames[0]).toMatch(/Pushing \[#+-+\]  75% 3\.0 MiB \/ 4\.0 MiB/)
    expect(frames[2]).toMatch(/Pushing \[#+\] 100% 4\.0 MiB \/ 4\.0 MiB/)
    expect(out).toContain(
      '\nPushed r/apps/x:latest: 1 blob(s) uploaded (1.0 MiB), 1 reused from the registry (3.0 MiB)\n',
    )
  })

  it('writes one plain line per finished blob elsewhere, no carriage returns', () => {
    const out = run(false)
    expect(out).not.toContain('\r')
    expect(out.split('\n').filter(Boolean)).toEqual([
      `  reused   ${base.digest.slice(0, 19)} 3.0 MiB`,
      `  uploaded ${app.digest.slice(0, 19)} 1.0 MiB`,
      'Pushed r/apps/x:latest: 1 blob(s) uploaded (1.0 MiB), 1 reused from the registry (3.0 MiB)',
    ])
  })
})
