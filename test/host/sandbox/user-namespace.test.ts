import { describe, expect, it } from 'vitest'
import {
  hostIdOf,
  idMappings,
  nodeIdRange,
  PROBE_ID_RANGE,
} from '../../../host/sandbox/user-namespace.ts'

describe('node id ranges', () => {
  it.each([
    [0, 2 ** 30 + 65_536], // block 0 is the probe's
    [1, 2 ** 30 + 2 * 65_536],
    [16_382, 2 ** 31 - 65_536], // the last block: every id stays below 2^31
  ])('gives lease %i the range from host id %i', (index, hostId) => {
    expect(nodeIdRange(index)).toEqual({ hostId, size: 65_536 })
  })

  it.each([
    [16_383], // past the last block (a subnet range larger than the default /16)
    [-1],
    [1.5],
  ])('gives lease %s no range', (index) => {
    expect(nodeIdRange(index)).toBeUndefined()
  })

  it('never overlaps the probe or another lease', () => {
    const starts = [PROBE_ID_RANGE.hostId, ...[0, 1, 2, 100].map((i) => nodeIdRange(i)!.hostId)]
    const sorted = [...starts].sort((a, b) => a - b)
    for (let i = 1; i < sorted.length; i++)
      expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(65_536)
  })

  it('maps container ids 0..65535 and nothing past them', () => {
    const range = nodeIdRange(3)!
    expect(idMappings(range)).toEqual([{ containerID: 0, hostID: range.hostId, size: 65_536 }])
    expect(hostIdOf(range, 0)).toBe(range.hostId)
    expect(hostIdOf(range, 1000)).toBe(range.hostId + 1000)
    expect(hostIdOf(range, 65_535)).toBe(range.hostId + 65_535)
    expect(hostIdOf(range, 65_536)).toBeUndefined()
  })
})
