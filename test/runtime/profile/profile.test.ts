import { describe, expect, it } from 'vitest'
import { layoutOrder, mergeProfiles, normalizeRanges, parseProfile, serializeProfile, type Profile } from '../../../runtime/profile/index.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'

const subject = sha256Of('image')
const profile = (entries: Profile['entries'], runs = 1): Profile => ({
  version: 1,
  subject,
  workload: 'w',
  runs,
  entries,
})

describe('profiles', () => {
  it('round-trips through JSON and normalizes ranges', () => {
    const p = profile([{ path: '/a', t: 1, ranges: [[10, 5], [0, 10], [100, 1]] }])
    const back = parseProfile(serializeProfile(p))
    expect(back.entries[0]!.ranges).toEqual([[0, 15], [100, 1]])
  })

  it.each([
    ['not JSON', Buffer.from('{')],
    ['wrong version', Buffer.from(JSON.stringify({ ...profile([]), version: 2 }))],
    ['bad subject digest', Buffer.from(JSON.stringify({ ...profile([]), subject: 'sha256:xyz' }))],
    ['relative path', Buffer.from(JSON.stringify(profile([{ path: 'etc/x', t: 0, ranges: [] }])))],
    ['negative offset', Buffer.from(JSON.stringify(profile([{ path: '/x', t: 0, ranges: [[-1, 2]] }])))],
    ['zero-length range', Buffer.from(JSON.stringify(profile([{ path: '/x', t: 0, ranges: [[0, 0]] }])))],
    ['too large', Buffer.alloc(9 * 1024 * 1024, 32)],
  ])('rejects %s with PROFILE_INVALID', (_name, bytes) => {
    expect(() => parseProfile(bytes)).toThrowError(expect.objectContaining({ code: 'PROFILE_INVALID', fault: 'user' }))
  })

  it('merges runs: union of paths and ranges, ordered by median first access', () => {
    const merged = mergeProfiles([
      profile([
        { path: '/b', t: 10, ranges: [[0, 4096]] },
        { path: '/a', t: 20, ranges: [[0, 10]] },
      ]),
      profile([
        { path: '/a', t: 1, ranges: [[5, 20]] },
        { path: '/b', t: 30, ranges: [[8192, 4096]] },
      ]),
      profile([{ path: '/a', t: 2, ranges: [] }, { path: '/c', t: 0, ranges: [] }]),
    ])
    expect(merged.runs).toBe(3)
    // medians: /a → 2, /b → 20, /c → 0
    expect(merged.entries.map((e) => e.path)).toEqual(['/c', '/a', '/b'])
    expect(merged.entries[1]!.ranges).toEqual([[0, 25]])
    expect(merged.entries[2]!.ranges).toEqual([[0, 4096], [8192, 4096]])
  })

  it('refuses to merge profiles of different images', () => {
    const other = { ...profile([]), subject: sha256Of('other') }
    expect(() => mergeProfiles([profile([]), other])).toThrowError(expect.objectContaining({ code: 'PROFILE_MISMATCH' }))
  })

  it('lays out by every workload’s paths, default first, with the union of their ranges; a path read whole by one stays whole', () => {
    const first = profile([
      { path: '/lib/a.so', t: 1, ranges: [[0, 10], [100, 10]] },
      { path: '/etc/conf', t: 2, ranges: [] },
    ])
    const second = profile([
      { path: '/bin/x', t: 1, ranges: [[5, 5]] },
      { path: '/lib/a.so', t: 2, ranges: [[8, 20]] },
      { path: '/etc/conf', t: 3, ranges: [[0, 1]] },
    ])
    expect(layoutOrder([first, second])).toEqual({
      order: ['/lib/a.so', '/etc/conf', '/bin/x'],
      ranges: [
        ['/lib/a.so', [[0, 28], [100, 10]]],
        ['/bin/x', [[5, 5]]],
      ],
    })
  })

  it('normalizes touching ranges into one', () => {
    expect(normalizeRanges([[0, 10], [10, 10]])).toEqual([[0, 20]])
  })
})
