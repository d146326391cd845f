import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS } from '../../../host/apps/app-spec.ts'
import {
  applyChange,
  boundedHistory,
  REVISION_HISTORY,
  sameRuntime,
  type Revision,
  type RevisionContent,
} from '../../../host/apps/revision.ts'

const base: RevisionContent = {
  image: 'r:5000/apps/a@sha256:1',
  settings: { A: '1', B: '2' },
  keys: { default: 'k'.repeat(16) },
  limits: { ...DEFAULT_LIMITS, maxNodes: 2 },
}

describe('applyChange (the merge rules of a revision)', () => {
  it('carries settings, keys and limits over when a deploy changes only the image', () => {
    const next = applyChange(base, { cause: { kind: 'deploy' }, image: 'r:5000/apps/a@sha256:2' })
    expect(next).toEqual({ ...base, image: 'r:5000/apps/a@sha256:2' })
  })

  it.each([
    // a setting given wins, the others stay
    [{ settings: { B: 'two', C: '3' } }, { A: '1', B: 'two', C: '3' }],
    // unset removes; a name that is not there is no error
    [{ unsetSettings: ['A', 'NOPE'] }, { B: '2' }],
    // set and unset of different names in one change
    [
      { settings: { C: '3' }, unsetSettings: ['B'] },
      { A: '1', C: '3' },
    ],
    // replace (the admin API's PUT with settings) drops what it does not name
    [{ replaceSettings: { Z: '9' } }, { Z: '9' }],
  ])('merges settings: %j', (change, settings) => {
    expect(applyChange(base, { cause: { kind: 'settings' }, ...change }).settings).toEqual(settings)
  })

  it('merges keys and limits like settings', () => {
    const next = applyChange(base, {
      cause: { kind: 'keys' },
      keys: { other: 'o'.repeat(16) },
      limits: { concurrency: 4 },
    })
    expect(next.keys).toEqual({ default: 'k'.repeat(16), other: 'o'.repeat(16) })
    expect(next.limits).toEqual({ ...DEFAULT_LIMITS, maxNodes: 2, concurrency: 4 })
    expect(applyChange(base, { cause: { kind: 'keys' }, unsetKeys: ['default'] }).keys).toEqual({})
  })

  it('starts a new app from defaults and needs an image for it', () => {
    expect(applyChange(undefined, { cause: { kind: 'create' }, image: 'r:5000/x:1' })).toEqual({
      image: 'r:5000/x:1',
      settings: {},
      keys: {},
      limits: DEFAULT_LIMITS,
    })
    expect(() => applyChange(undefined, { cause: { kind: 'create' } })).toThrow(/needs an image/)
  })

  it('rolls back to the image, settings and limits of an older revision, keeping the current keys', () => {
    const old: RevisionContent = {
      image: 'r:5000/apps/a@sha256:0',
      settings: { OLD: 'y' },
      keys: { leaked: 'l'.repeat(16) },
      limits: DEFAULT_LIMITS,
    }
    const next = applyChange(base, { cause: { kind: 'rollback', to: 1 } }, old)
    expect(next).toEqual({
      image: old.image,
      settings: { OLD: 'y' },
      keys: base.keys,
      limits: DEFAULT_LIMITS,
    })
  })
})

describe('sameRuntime', () => {
  it('is true for a change of keys alone, false for image, settings or limits', () => {
    expect(sameRuntime(base, { ...base, keys: {} })).toBe(true)
    expect(sameRuntime(base, { ...base, settings: { B: '2', A: '1' } })).toBe(true) // order does not count
    expect(sameRuntime(base, { ...base, image: 'r:5000/other:1' })).toBe(false)
    expect(sameRuntime(base, { ...base, settings: { A: '1' } })).toBe(false)
    expect(sameRuntime(base, { ...base, limits: { ...base.limits, maxNodes: 3 } })).toBe(false)
  })
})

describe('boundedHistory', () => {
  const rev = (number: number): Revision => ({
    ...base,
    number,
    createdAt: '',
    cause: { kind: 'deploy' },
  })

  it(`keeps the newest ${REVISION_HISTORY}, and the active one even when it is older`, () => {
    let history: Revision[] = [rev(1)]
    for (let n = 2; n <= 30; n++) history = boundedHistory(history, rev(n), 1)
    expect(history.map((r) => r.number)).toEqual([
      ...Array.from({ length: REVISION_HISTORY }, (_, i) => 30 - i),
      1,
    ])
    const after = boundedHistory(history, rev(31), 31)
    expect(after.map((r) => r.number)).toEqual(
      Array.from({ length: REVISION_HISTORY }, (_, i) => 31 - i),
    )
  })
})
