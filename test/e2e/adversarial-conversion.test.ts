import { describe, expect, it } from 'vitest'
import { MediaType } from '../../runtime/oci/index.ts'
import {
  buildEntryBomb,
  buildZeroBomb,
  type BombCompression,
  type BombLayer,
} from '../support/bomb-layers.ts'
import { waitForConversion } from '../support/convert-image.ts'
import { startEdgeProcess, type EdgeProcess } from '../support/edge-process.ts'
import { procMemory } from '../support/proc-memory.ts'
import { pushLayerImage } from '../support/push-layer-image.ts'

/**
 * Layers built to hurt the converter, pushed to a real `thaw edge` process (issue 15 item 1),
 * one row each: the edge's `conversion.limits`, the layer, and how the conversion must end. Every
 * row also holds the edge to a memory budget: its peak RSS (VmHWM of /proc/<pid>/status, threads
 * included), whatever the layer expands to. Rows have the shape of adversarial-edge.test.ts's:
 * `attack` returns observations, `expected` is matched against them. Never timings.
 *
 * The bombs are built here, streamed (this process stays small): 2 GiB of zeros are about 66 KB
 * of zstd and 2 MB of gzip, built in 3 to 9 s each and converted by the edge in 10 to 15 s.
 */

const MB = 1e6
const GiB = 2 ** 30
const BUDGET = 300 * MB

interface ConversionAttack {
  name: string
  limits?: Record<string, number>
  attack: (edge: EdgeProcess) => Promise<Record<string, unknown>>
  expected: Record<string, unknown>
}

// Each bomb is built once, for the rows that push it.
const built = new Map<string, Promise<BombLayer>>()
const bomb = (key: string, build: () => Promise<BombLayer>) => {
  if (!built.has(key)) built.set(key, build())
  return built.get(key)!
}
const zeros = (bytes: number, compression: BombCompression, zstdWindowLog?: number) =>
  bomb(`${bytes} ${compression} ${zstdWindowLog}`, () =>
    buildZeroBomb(bytes, compression, { zstdWindowLog }),
  )
const emptyFiles = (entries: number) =>
  bomb(`${entries} files`, () => buildEntryBomb(entries, 'zstd'))

/** Pushes a one-layer image of `layer` and waits for its conversion to end; what it ended as. */
async function pushAndConvert(edge: EdgeProcess, layer: BombLayer) {
  const mediaType = layer.compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerZstd
  const manifest = await pushLayerImage(edge.url, 'attack/bomb', 'v1', [{ ...layer, mediaType }])
  const ended = (s: Record<string, unknown>) => !['pending', 'converting'].includes(String(s.state))
  const status = await waitForConversion(edge.url, 'attack/bomb', manifest, ended, 300_000)
  const alive = await fetch(`${edge.url}/v2/`).then(
    (res) => res.status === 200,
    () => false,
  )
  const { peakRss } = await procMemory(edge.process.pid)
  return {
    state: status.state,
    code: status.code,
    reason: status.reason,
    alive,
    withinBudget: peakRss <= BUDGET || `${(peakRss / MB).toFixed(0)} MB peak`,
  }
}

const cases: ConversionAttack[] = [
  {
    // What the issue did, a fifth of the size: with default limits it converts, in bounded memory.
    name: 'a zstd layer of 2 GiB of zeros, default limits',
    attack: async (edge) => pushAndConvert(edge, await zeros(2 * GiB, 'zstd')),
    expected: { state: 'converted', alive: true, withinBudget: true },
  },
  {
    name: 'a gzip layer of 2 GiB of zeros, default limits',
    attack: async (edge) => pushAndConvert(edge, await zeros(2 * GiB, 'gzip')),
    expected: { state: 'converted', alive: true, withinBudget: true },
  },
  {
    // The layer stops at the limit: skipped, with the layer and the limit in the reason.
    name: 'a zstd layer of 2 GiB of zeros over maxLayerUncompressedBytes',
    limits: { maxLayerUncompressedBytes: GiB },
    attack: async (edge) => pushAndConvert(edge, await zeros(2 * GiB, 'zstd')),
    expected: {
      state: 'skipped',
      code: 'LAYER_UNCOMPRESSED_TOO_LARGE',
      reason: `layer 0: decompresses to more than ${GiB} bytes, the limit for one layer`,
      alive: true,
      withinBudget: true,
    },
  },
  {
    name: 'a gzip layer of 2 GiB of zeros over maxImageUncompressedBytes',
    limits: { maxImageUncompressedBytes: GiB },
    attack: async (edge) => pushAndConvert(edge, await zeros(2 * GiB, 'gzip')),
    expected: {
      state: 'skipped',
      code: 'IMAGE_UNCOMPRESSED_TOO_LARGE',
      reason: `layer 0: the layers decompress to more than ${GiB} bytes, the limit for an image`,
      alive: true,
      withinBudget: true,
    },
  },
  {
    // A frame that declares a 128 MiB window would make the decoder hold 128 MiB, whatever the
    // frame holds (here 64 MiB of zeros): refused before anything is decoded.
    name: 'a zstd layer whose frame declares a 128 MiB window',
    attack: async (edge) => pushAndConvert(edge, await zeros(64 * 2 ** 20, 'zstd', 27)),
    expected: {
      state: 'skipped',
      code: 'LAYER_DECOMPRESS_FAILED',
      reason: expect.stringContaining('a frame declares a window over 33554432 bytes'),
      alive: true,
      withinBudget: true,
    },
  },
  {
    // Entries cost memory until the index is written (about 1.1 KB each): the limit stops them.
    name: 'a zstd layer of 300 000 empty files over maxImageEntries',
    limits: { maxImageEntries: 10_000 },
    attack: async (edge) => pushAndConvert(edge, await emptyFiles(300_000)),
    expected: {
      state: 'skipped',
      code: 'IMAGE_TOO_MANY_ENTRIES',
      reason: 'layer 0: the layers have more than 10000 entries, the limit for an image',
      alive: true,
      withinBudget: true,
    },
  },
]

describe('conversion attacks', () => {
  it.each(cases)('$name', async ({ limits, attack, expected }) => {
    // An edge of its own per row: VmHWM is the peak since the process started.
    const edge = await startEdgeProcess({
      config: limits === undefined ? undefined : { conversion: { limits } },
    })
    expect(await attack(edge)).toMatchObject(expected)
    await edge.process.stop()
  })
})
