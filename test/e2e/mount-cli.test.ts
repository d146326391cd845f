import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuseUnavailable } from '../support/fuse.ts'
import { runReader, startMount } from '../support/mount-process.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { pushStreamingImage, type PushedStreamingImage } from '../support/streaming-image.ts'
import { tmpDir } from '../support/tmp.ts'
import { randomUmociImage } from '../support/umoci-image.ts'

const mounted = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir)

describe.skipIf(fuseUnavailable)('thaw mount IMAGE DIR', () => {
  let registry: TestRegistry
  let image: PushedStreamingImage
  beforeAll(async () => {
    registry = await startDistribution()
    const dir = await tmpDir('thaw-mount-cli-')
    const layout = await randomUmociImage(dir, 3, { entries: 60, largeBytes: 100_000 })
    image = await pushStreamingImage({ registry: registry.url, repository: 'cli/app', layout, tag: 't' })
  })
  afterAll(() => registry?.stop())

  it.each(['SIGINT', 'SIGTERM'] as const)('on %s prints what it fetched, unmounts and exits 0', async (signal) => {
    const dir = await tmpDir('thaw-mount-cli-m-')
    const m = await startMount({ reference: image.reference, dir: join(dir, 'mnt'), cache: join(dir, 'cache'), args: ['--no-background'] })
    expect(mounted(m.dir)).toBe(true)
    await runReader('find', [m.dir, '-type', 'f', '-size', '+0', '-exec', 'cat', '{}', '+'])
    m.process.child.kill(signal)
    expect(await m.process.exited).toBe(0)
    const out = m.process.output()
    const fetched = JSON.parse(out.match(/^fetched: (.*)$/m)![1]!) as Record<string, number>
    expect(fetched.requests).toBeGreaterThan(0)
    expect(fetched.bytes).toBeGreaterThan(0)
    expect(out).toMatch(/^unmounted$/m)
    expect(mounted(m.dir)).toBe(false)
  })

  it('refuses a missing DIR argument with a usage message', async () => {
    await expect(runReader(join(import.meta.dirname, '..', '..', 'bin', 'thaw'), ['mount', image.reference])).rejects.toThrow(
      /IMAGE and DIR are required/,
    )
  })
})
