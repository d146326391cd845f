import { describe, expect, it } from 'vitest'
import { compress } from 'zstd-napi'
import { memorySink } from '../../../runtime/format/blob-sink.ts'
import { ExpansionBudget, type ExpansionLimits } from '../../../runtime/format/expansion-budget.ts'
import { writeLayer } from '../../../runtime/format/layer-writer.ts'
import type { TarSafetyOptions } from '../../../runtime/format/tar/safety.ts'
import { buildTar, chunked } from '../../support/tar-builder.ts'

// Two zstd layers: 2 048 tar bytes (one entry), then 3 072 (two entries). 5 120 bytes and three
// entries in all.
const layers = [
  buildTar([{ name: 'a', content: 'a'.repeat(500) }]),
  buildTar([
    { name: 'b', content: 'b' },
    { name: 'c', content: 'c' },
  ]),
].map((tar) => compress(tar))

let opened = 0

/** Converts the image layer by layer with one budget: `converted`, or the code and the layer. */
async function convertImage(
  limits: Partial<ExpansionLimits>,
  options: { safety?: TarSafetyOptions; order?: string[] } = {},
): Promise<string> {
  const budget = new ExpansionBudget(limits)
  opened = 0
  for (const [i, layer] of layers.entries()) {
    try {
      const open = () => {
        opened++
        return chunked(layer, 100)
      }
      await writeLayer(open, memorySink(), {
        compression: 'zstd',
        budget,
        ...options,
      })
    } catch (err) {
      return `${(err as { code?: string }).code ?? String(err)} at layer ${i}`
    }
  }
  return 'converted'
}

describe('expansion limits while converting an image', () => {
  const cases: [string, Partial<ExpansionLimits>, string][] = [
    // nothing set: nothing is limited
    ['no limits', {}, 'converted'],
    // a layer of exactly the limit is fine
    ['the larger layer exactly at the layer limit', { maxLayerBytes: 3072 }, 'converted'],
    // one byte over, in the second layer
    [
      'a layer one byte over the layer limit',
      { maxLayerBytes: 3071 },
      'LAYER_UNCOMPRESSED_TOO_LARGE at layer 1',
    ],
    // the first layer is over: the second is never read
    [
      'the first layer over the layer limit',
      { maxLayerBytes: 2047 },
      'LAYER_UNCOMPRESSED_TOO_LARGE at layer 0',
    ],
    // the layers add up to exactly the image limit
    ['the image exactly at the image limit', { maxImageBytes: 5120 }, 'converted'],
    // each layer is within, the sum is not: the second layer stops
    [
      'the image one byte over the image limit',
      { maxImageBytes: 5119 },
      'IMAGE_UNCOMPRESSED_TOO_LARGE at layer 1',
    ],
    // a layer over both limits is named by the layer limit
    [
      'a layer over both limits',
      { maxLayerBytes: 1000, maxImageBytes: 1000 },
      'LAYER_UNCOMPRESSED_TOO_LARGE at layer 0',
    ],
    // three entries in all
    ['entries exactly at the image limit', { maxImageEntries: 3 }, 'converted'],
    ['one entry over the image limit', { maxImageEntries: 2 }, 'IMAGE_TOO_MANY_ENTRIES at layer 1'],
  ]
  it.each(cases)('%s: %s', async (_what, limits, expected) => {
    expect(await convertImage(limits)).toBe(expected)
  })

  it('checks the entries of one layer with TarSafety (TAR_TOO_MANY_ENTRIES)', async () => {
    expect(await convertImage({}, { safety: { maxEntries: 1 } })).toBe(
      'TAR_TOO_MANY_ENTRIES at layer 1',
    )
  })

  it('counts a layer read twice for a profile once for the image, and checks both passes', async () => {
    const order = ['c', 'a']
    expect(await convertImage({ maxImageBytes: 5120, maxImageEntries: 3 }, { order })).toBe(
      'converted',
    )
    // The first pass (reading the profiled files ahead) stops at the limit: no second pass.
    expect(await convertImage({ maxLayerBytes: 2047 }, { order })).toBe(
      'LAYER_UNCOMPRESSED_TOO_LARGE at layer 0',
    )
    expect(opened).toBe(1)
    expect(await convertImage({ maxImageEntries: 2 }, { order })).toBe(
      'IMAGE_TOO_MANY_ENTRIES at layer 1',
    )
    expect(opened).toBe(3)
  })

  it('says which limit was passed and what it is', async () => {
    const budget = new ExpansionBudget({ maxImageBytes: 5119 })
    budget.commit(budget.meter())
    const meter = budget.meter()
    expect(() => meter.addBytes(5120)).toThrow(
      expect.objectContaining({
        code: 'IMAGE_UNCOMPRESSED_TOO_LARGE',
        fault: 'user',
        message: 'the layers decompress to more than 5119 bytes, the limit for an image',
      }),
    )
  })
})
