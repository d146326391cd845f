import { describe, expect, it } from 'vitest'
import { parseRangeHeader } from '../../../registry-edge/http/range-header.ts'

const SIZE = 1000

describe('parseRangeHeader', () => {
  it.each([
    // [header, expected ranges] for satisfiable requests on a 1000-byte blob
    ['bytes=0-9', [[0, 9]]], // int-range
    ['bytes=990-', [[990, 999]]], // open-ended int-range
    ['bytes=-5', [[995, 999]]], // suffix-range: the last 5 bytes
    ['bytes=-2000', [[0, 999]]], // suffix longer than the blob: the whole blob
    ['bytes=0-99999', [[0, 999]]], // last-pos past the end is clipped
    ['bytes=0-0', [[0, 0]]], // a single byte
    ['BYTES=0-1', [[0, 1]]], // range units are case-insensitive (RFC 9110 §14.1)
    ['bytes=0-1,5-6', [[0, 1], [5, 6]]], // multi-range, in request order
    ['bytes=5-6,0-1', [[5, 6], [0, 1]]], // not reordered
    ['bytes= 0-1 , 3-4', [[0, 1], [3, 4]]], // optional whitespace around list elements
    ['bytes=1-2,,3-4', [[1, 2], [3, 4]]], // empty list elements are ignored (RFC 9110 §5.6.1)
    ['bytes=0-1,2000-3000', [[0, 1]]], // unsatisfiable members are dropped
  ])('%s → %j', (header, expected) => {
    const result = parseRangeHeader(header, SIZE)
    expect(result).toEqual({ kind: 'partial', ranges: expected.map(([start, end]) => ({ start, end })) })
  })

  it.each([
    // headers that must be answered with the whole blob (200)
    [null], // no Range header
    ['items=0-5'], // unknown range unit: a server MUST ignore it (RFC 9110 §14.2)
    ['bytes=0-999,0-999'], // ranges adding up to more than the blob: ignored, like Go's ServeContent
  ])('%s → full', (header) => {
    expect(parseRangeHeader(header, SIZE)).toEqual({ kind: 'full' })
  })

  it.each([
    // headers answered with 416 Range Not Satisfiable
    ['bytes=2000-'], // starts past the end
    ['bytes=1000-1000'], // starts exactly at the end
    ['bytes=-0'], // zero-length suffix selects nothing (RFC 9110 §14.1.1)
    ['bytes=5-2'], // last-pos before first-pos: invalid
    ['bytes=abc'], // not a range at all
    ['bytes=1-2-3'], // malformed
    ['bytes=,'], // a range set with no ranges
    ['bytes 0-1'], // no "=" after the unit
    ['bytes=0-1,x'], // one malformed member spoils the header
    [`bytes=${Array.from({ length: 101 }, (_, i) => `${i}-${i}`).join(',')}`], // more than 100 ranges
  ])('%s → unsatisfiable', (header) => {
    expect(parseRangeHeader(header, SIZE).kind).toBe('unsatisfiable')
  })

  it('finds nothing satisfiable in an empty blob', () => {
    expect(parseRangeHeader('bytes=0-', 0).kind).toBe('unsatisfiable')
    expect(parseRangeHeader('bytes=-1', 0).kind).toBe('unsatisfiable')
  })

  it('treats positions beyond 2^53 as past the end instead of overflowing', () => {
    expect(parseRangeHeader('bytes=99999999999999999999-', SIZE).kind).toBe('unsatisfiable')
    expect(parseRangeHeader('bytes=10-99999999999999999999', SIZE)).toEqual({
      kind: 'partial',
      ranges: [{ start: 10, end: 999 }],
    })
  })
})
