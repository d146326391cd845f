import { describe, expect, it } from 'vitest'
import { parseAppInput } from '../../../host/apps/app-spec.ts'
import { parseBodyLimits } from '../../../host/request-body/index.ts'

const MiB = 1024 * 1024

describe('request body limits from app settings', () => {
  it('defaults to an eighth of the node memory, at most Azure 100 MB, 20 s and 500 bytes/s', () => {
    expect(parseBodyLimits({}, { memoryBytes: 256 * MiB })).toEqual({
      limits: { maxBytes: 32 * MiB, timeoutMs: 20_000, minBytesPerSecond: 500 },
      problems: [],
    })
    expect(parseBodyLimits({}, { memoryBytes: 4096 * MiB }).limits.maxBytes).toBe(104_857_600)
    // thaw start: no node memory limit, Azure's default
    expect(parseBodyLimits({}).limits.maxBytes).toBe(104_857_600)
  })

  it.each([
    // Azure's setting raises the size past the memory-based default
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '209715200' }, { maxBytes: 200 * MiB }],
    // ...or lowers it; 0 takes no body at all
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '0' }, { maxBytes: 0 }],
    // whitespace around a value is fine
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: ' 1000 ' }, { maxBytes: 1000 }],
    // seconds, fractions allowed
    [{ FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '2.5' }, { timeoutMs: 2500 }],
    // 0 turns the rate rule off (silence is still limited)
    [{ FUNCTIONS_REQUEST_BODY_MIN_RATE: '0' }, { minBytesPerSecond: 0 }],
    // an empty setting is an absent one
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '' }, { maxBytes: 32 * MiB }],
  ])('reads %j', (settings, expected) => {
    const parsed = parseBodyLimits(settings, { memoryBytes: 256 * MiB })
    expect(parsed.problems).toEqual([])
    expect(parsed.limits).toMatchObject(expected)
  })

  it.each([
    // not a number
    [
      { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '100MB' },
      /FUNCTIONS_REQUEST_BODY_SIZE_LIMIT must be a whole number of bytes, not "100MB"/,
    ],
    // negative
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '-1' }, /whole number/],
    // a fraction of a byte
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1.5' }, /whole number/],
    // beyond exact integers
    [{ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '99999999999999999999' }, /whole number/],
    // a deadline of zero would refuse every body
    [
      { FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '0' },
      /FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS must be a number of seconds above 0/,
    ],
    // longer than any request may run
    [{ FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '3601' }, /at most 3600/],
    // units are not parsed
    [{ FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '20s' }, /seconds/],
    // a rate is whole bytes per second
    [
      { FUNCTIONS_REQUEST_BODY_MIN_RATE: 'fast' },
      /FUNCTIONS_REQUEST_BODY_MIN_RATE must be a whole number of bytes per second/,
    ],
  ])('names a malformed %j and keeps its default', (settings, problem) => {
    const parsed = parseBodyLimits(settings, { memoryBytes: 256 * MiB })
    expect(parsed.problems).toHaveLength(1)
    expect(parsed.problems[0]).toMatch(problem)
    expect(parsed.limits).toEqual(parseBodyLimits({}, { memoryBytes: 256 * MiB }).limits)
  })

  it('is refused by the admin API with the setting named', () => {
    const app = {
      name: 'a',
      image: '127.0.0.1:5000/a:b',
      settings: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: 'lots' },
    }
    expect(() => parseAppInput(app)).toThrow(
      /settings FUNCTIONS_REQUEST_BODY_SIZE_LIMIT must be a whole number/,
    )
    expect(
      parseAppInput({ ...app, settings: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000' } }).settings,
    ).toEqual({
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000',
    })
  })
})
