import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openAppStore } from '../../../host/apps/app-store.ts'
import { DEFAULT_LIMITS } from '../../../host/apps/app-spec.ts'
import { tmpDir } from '../../support/tmp.ts'

describe('app store', () => {
  it('keeps apps across a restart (a new store over the same state directory)', async () => {
    const dir = await tmpDir()
    const first = await openAppStore(dir)
    await first.put({ name: 'hello', image: '127.0.0.1:5000/apps/hello:v1', settings: { A: '1' } })
    await first.put({ name: 'gone', image: '127.0.0.1:5000/apps/gone:v1' })
    await first.update('hello', { limits: { maxNodes: 2 } })
    await first.delete('gone')
    const again = await openAppStore(dir)
    expect(again.list().map((a) => a.name)).toEqual(['hello'])
    expect(again.get('hello')).toMatchObject({
      image: '127.0.0.1:5000/apps/hello:v1',
      settings: { A: '1' },
      limits: { ...DEFAULT_LIMITS, maxNodes: 2 },
    })
  })

  it('tells put whether it created or replaced', async () => {
    const store = await openAppStore(await tmpDir())
    const input = { name: 'a', image: '127.0.0.1:5000/x:1' }
    expect((await store.put(input)).created).toBe(true)
    expect((await store.put(input)).created).toBe(false)
  })

  it('loads an apps.json written before the CPU and privilege limits with their defaults', async () => {
    const dir = await tmpDir()
    const { cpuMillis: _c, addCapabilities: _a, seccomp: _s, ...older } = DEFAULT_LIMITS
    const app = { name: 'old', image: '127.0.0.1:5000/x:1', settings: {}, keys: {}, limits: older }
    const stamps = { createdAt: '2026-11-01T00:00:00.000Z', updatedAt: '2026-11-01T00:00:00.000Z' }
    await writeFile(
      join(dir, 'apps.json'),
      JSON.stringify({ version: 1, apps: [{ ...app, ...stamps }] }),
    )
    expect((await openAppStore(dir)).get('old')?.limits).toEqual(DEFAULT_LIMITS)
  })

  it('refuses to start over a corrupt apps.json instead of dropping the apps in it', async () => {
    const dir = await tmpDir()
    await writeFile(join(dir, 'apps.json'), '{ not json')
    await expect(openAppStore(dir)).rejects.toThrow()
  })
})
