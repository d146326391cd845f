import { describe, expect, it } from 'vitest'
import { conversionOptionsOf } from '../../../registry-edge/config/conversion-config.ts'
import { parseEdgeConfig } from '../../../registry-edge/config/edge-config.ts'
import { startTestEdge } from '../../support/edge-client.ts'

describe('the conversion config', () => {
  it('turns conversion on by default, streaming on for every repository, one at a time', () => {
    const { conversion } = parseEdgeConfig({})
    expect(conversionOptionsOf(conversion)).toEqual({ streaming: true, concurrency: 1, limits: {} })
  })

  it('passes the limits given and leaves the others to the converter defaults', () => {
    const { conversion } = parseEdgeConfig({
      conversion: {
        streaming: false,
        concurrency: 2,
        codec: 'gzip',
        limits: { maxLayers: 3, allowDevices: true, maxImageUncompressedBytes: 2 ** 40 },
      },
    })
    expect(conversionOptionsOf(conversion)).toEqual({
      streaming: false,
      concurrency: 2,
      codec: 'gzip',
      limits: { maxLayers: 3, allowDevices: true, maxImageUncompressedBytes: 2 ** 40 },
    })
  })

  it('schedules scans of the repositories given, every five minutes unless told', () => {
    const { conversion } = parseEdgeConfig({
      conversion: { schedule: { repositories: ['ci/app', 'ci/worker'] } },
    })
    expect(conversionOptionsOf(conversion)?.schedule).toEqual({
      intervalMs: 300_000,
      repositories: ['ci/app', 'ci/worker'],
    })
  })

  it('gives no conversion options when conversion is disabled', () => {
    expect(
      conversionOptionsOf(parseEdgeConfig({ conversion: { enabled: false } }).conversion),
    ).toBeUndefined()
  })

  // Configs refused, each with the field named in the message.
  const bad: [string, unknown, string][] = [
    // an unknown field (a typo must not be ignored)
    ['an unknown field', { conversion: { streamin: true } }, 'streamin'],
    // no conversions at all is `enabled: false`, not concurrency 0
    ['a concurrency of 0', { conversion: { concurrency: 0 } }, 'concurrency'],
    // only the codecs runtime/format has
    ['an unknown codec', { conversion: { codec: 'lz4' } }, 'codec'],
    // a platform is os/architecture[/variant]
    ['a malformed platform', { conversion: { limits: { platforms: ['amd64'] } } }, 'platforms'],
    // a limit of 0 would refuse every image: a limit is a positive integer
    [
      'an uncompressed limit of 0',
      { conversion: { limits: { maxLayerUncompressedBytes: 0 } } },
      'maxLayerUncompressedBytes',
    ],
    // entries are counted one by one
    [
      'a fractional entry limit',
      { conversion: { limits: { maxImageEntries: 1.5 } } },
      'maxImageEntries',
    ],
    // a repository name as the registry API has it (a tag or registry host is not part of it)
    [
      'a scheduled repository with a tag',
      { conversion: { schedule: { repositories: ['ci/app:1'] } } },
      'repositories',
    ],
    [
      'a schedule with no repository',
      { conversion: { schedule: { repositories: [] } } },
      'repositories',
    ],
    [
      'a schedule of no interval',
      { conversion: { schedule: { intervalSeconds: 0, repositories: ['a'] } } },
      'intervalSeconds',
    ],
  ]
  it.each(bad)('refuses %s', (_what, input, field) => {
    expect(() => parseEdgeConfig(input)).toThrow(field)
  })

  it('serves no _thaw endpoints when conversion is off', async () => {
    const { url } = await startTestEdge({})
    expect((await fetch(`${url}/v2/apps/x/_thaw/settings`)).status).toBe(404)
  })
})
