import { describe, expect, it } from 'vitest'
import { matchesFilters } from '../../../host/snapshotter/snapshot-filters.ts'
import type { SnapshotRecord } from '../../../host/snapshotter/snapshot-store.ts'

const record: SnapshotRecord = {
  id: '3',
  name: 'sha256:abc',
  parent: 'sha256:def',
  kind: 'committed',
  labels: { 'containerd.io/snapshot.ref': 'sha256:abc', team: 'a' },
  createdAt: '2026-12-03T00:00:00.000Z',
  updatedAt: '2026-12-03T00:00:00.000Z',
}

describe('matchesFilters (containerd filter syntax)', () => {
  it.each([
    // containerd's metadata store looks for a remote layer's committed snapshot like this
    [[`labels."containerd.io/snapshot.ref"==sha256:abc,parent=="sha256:def"`], true],
    [[`labels."containerd.io/snapshot.ref"==sha256:abc,parent=="sha256:xyz"`], false],
    [[], true], // no filter: everything
    [[''], true],
    [['kind==committed'], true],
    [['kind!=committed'], false],
    [['name~=^sha256:a'], true],
    [['labels.team'], true], // present
    [['labels.other'], false],
    [['labels.other', 'labels.team==a'], true], // any filter of the list
  ])('%j → %s', (filters, expected) => {
    expect(matchesFilters(record, filters)).toBe(expected)
  })

  it('rejects a bad regular expression with INVALID_ARGUMENT', () => {
    expect(() => matchesFilters(record, ['name~=('])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    )
  })
})
