import { describe, expect, it } from 'vitest'
import { createLineSplitter, encodeLine } from '../../../runtime/protocol/ndjson.ts'
import { decodeRouteParams, encodeRouteParams } from '../../../runtime/protocol/worker-contract.ts'
import { parseWorkerMessage } from '../../../runtime/protocol/worker-message-schemas.ts'

describe('the worker protocol', () => {
  it('splits NDJSON at newlines even when chunks cut lines and UTF-8 characters', () => {
    const lines: string[] = []
    const push = createLineSplitter((l) => lines.push(l))
    const bytes = Buffer.from(encodeLine({ a: 'é€😀' }) + encodeLine({ b: 2 }))
    for (let i = 0; i < bytes.length; i += 3) push(bytes.subarray(i, i + 3))
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ a: 'é€😀' }, { b: 2 }])
  })

  it('splits lines whole in one chunk and a line that goes on into the next', () => {
    const lines: string[] = []
    const push = createLineSplitter((l) => lines.push(l))
    push(Buffer.from('{"a":1}\n{"b":"é"}\n{"c":'))
    push(Buffer.from('3}\n'))
    expect(lines).toEqual(['{"a":1}', '{"b":"é"}', '{"c":3}'])
  })

  it('refuses a line longer than the limit', () => {
    const push = createLineSplitter(() => {}, 10)
    expect(() => push(Buffer.alloc(11, 97))).toThrow(RangeError)
  })

  it('keeps route params ASCII in the header and reads them back unchanged', () => {
    const params = { name: 'Zoë 😀', opt: null }
    const header = encodeRouteParams(params)
    expect(header).toMatch(/^[\x20-\x7e]+$/)
    expect(decodeRouteParams(header)).toEqual(params)
    expect(decodeRouteParams(undefined)).toEqual({})
  })

  // Headers a worker must refuse, each with why.
  const badParams: [string, string][] = [
    ['[]', 'an array'],
    ['{"a":1}', 'a number value'],
    ['{"a"', 'not JSON'],
  ]
  it.each(badParams)('refuses route params %s (%s)', (header) => {
    expect(() => decodeRouteParams(header)).toThrow()
  })

  // Control lines a host must refuse, each with why.
  const badMessages: [string, string][] = [
    ['{"type":"ready"}', 'ready without its fields'],
    ['{"type":"log","level":"loud","category":"user","message":"x"}', 'an unknown log level'],
    ['{"type":"surprise"}', 'an unknown message type'],
    [
      '{"type":"hello","protocol":1,"pid":"12","node":"v20","worker":"0"}',
      'a pid that is a string',
    ],
    ['not json', 'not JSON'],
  ]
  it.each(badMessages)('refuses the control line %s (%s)', (line) => {
    expect(() => parseWorkerMessage(line)).toThrow()
  })
})
