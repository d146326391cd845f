import { readFileSync } from 'node:fs'
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

describe('app store revisions', () => {
  const image = '127.0.0.1:5000/apps/hello@sha256:' + 'a'.repeat(64)
  const image2 = '127.0.0.1:5000/apps/hello@sha256:' + 'b'.repeat(64)

  it('keeps settings, keys and limits when PUT gives only a new image (the record is not replaced)', async () => {
    const store = await openAppStore(await tmpDir())
    await store.put({
      name: 'a',
      image,
      settings: { A: '1' },
      keys: { default: 'k'.repeat(20) },
      limits: { maxNodes: 2 },
    })
    const { app } = await store.put({ name: 'a', image: image2 })
    expect(app).toMatchObject({
      image: image2,
      settings: { A: '1' },
      keys: { default: 'k'.repeat(20) },
      revision: 2,
    })
    expect(app.limits.maxNodes).toBe(2)
  })

  it('numbers revisions, keeps them across a restart, and makes a failed one without switching to it', async () => {
    const dir = await tmpDir()
    const store = await openAppStore(dir)
    await store.commit(
      store.draft(
        'a',
        { cause: { kind: 'deploy' }, image, settings: { A: '1' } },
        { create: true },
      ),
    )
    await store.commit(store.draft('a', { cause: { kind: 'settings' }, settings: { B: '2' } }))
    const bad = store.draft('a', { cause: { kind: 'deploy' }, image: image2 })
    const failed = await store.recordFailure(bad, { error: 'boom', logs: ['line'] })
    expect(failed.number).toBe(3)
    const again = await openAppStore(dir)
    expect(again.get('a')).toMatchObject({ image, settings: { A: '1', B: '2' }, revision: 2 })
    const record = again.record('a')!
    expect(record.active).toBe(2)
    expect(record.revisions.map((r) => [r.number, r.cause.kind, r.failed?.error])).toEqual([
      [3, 'deploy', 'boom'],
      [2, 'settings', undefined],
      [1, 'deploy', undefined],
    ])
  })

  it('rolls back to an older revision as a new one', async () => {
    const store = await openAppStore(await tmpDir())
    await store.commit(store.draft('a', { cause: { kind: 'deploy' }, image }, { create: true }))
    await store.commit(
      store.draft('a', { cause: { kind: 'deploy' }, image: image2, settings: { X: '1' } }),
    )
    const app = await store.commit(
      store.draft('a', { cause: { kind: 'rollback', to: 1 } }, { from: 1 }),
    )
    expect(app).toMatchObject({ image, settings: {}, revision: 3 })
    expect(() => store.draft('a', { cause: { kind: 'rollback', to: 9 } }, { from: 9 })).toThrow(
      /no revision 9/,
    )
  })

  it('refuses a draft made before another change (REVISION_CONFLICT), and changes nothing', async () => {
    const store = await openAppStore(await tmpDir())
    await store.commit(store.draft('a', { cause: { kind: 'deploy' }, image }, { create: true }))
    const stale = store.draft('a', { cause: { kind: 'settings' }, settings: { A: '1' } })
    await store.commit(store.draft('a', { cause: { kind: 'settings' }, settings: { B: '1' } }))
    await expect(store.commit(stale)).rejects.toMatchObject({ code: 'REVISION_CONFLICT' })
    expect(store.get('a')!.settings).toEqual({ B: '1' })
  })

  it('checks the merged settings (a bad body limit is refused, naming it)', async () => {
    const store = await openAppStore(await tmpDir())
    await store.commit(store.draft('a', { cause: { kind: 'deploy' }, image }, { create: true }))
    expect(() =>
      store.draft('a', {
        cause: { kind: 'settings' },
        settings: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: 'lots' },
      }),
    ).toThrow(/FUNCTIONS_REQUEST_BODY_SIZE_LIMIT/)
  })

  it('tells listeners only once the file is written, with the new app', async () => {
    const dir = await tmpDir()
    const store = await openAppStore(dir)
    const seen: unknown[] = []
    store.onChange((name, app) =>
      seen.push([
        name,
        app?.revision,
        JSON.parse(readFileSync(join(dir, 'apps.json'), 'utf8')).apps[0].active,
      ]),
    )
    await store.put({ name: 'a', image })
    expect(seen).toEqual([['a', 1, 1]])
  })
})
