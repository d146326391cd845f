/**
 * Bytes per cold start, without the timing benchmark: converts an image as the edge does, once in
 * its original order (the first start: no profile yet) and once laid out by a recorded profile
 * (the re-layout), then reports what a start moves over the wire. Only bytes: the figures do not
 * depend on the machine's load.
 *
 *   node --import tsx test/bench/bundle-bytes.ts --profile FILE [--layout DIR --tag multi]
 *        [--profiled-level N] [--min-cold BYTES] [--bundle-only] [--json]
 *
 * --profile: a merged profile as the edge serves it (`GET _thaw/profiles/<digest>?workload=<w>`).
 * Default layout: the cold-start bench's
 * `multi` image in /var/tmp/thaw-cache/bench-images/<key>/layout.
 *
 * Reported:
 * - read: the bytes the function read, the sum of the profile's ranges (uncompressed);
 * - bundle: the prefetch bundle the edge would serve for that profile (registry-edge/convert
 *   bundle-plan.ts over the re-laid index; record 0 is the binary index), and its frames;
 * - on demand, no profile: the compressed frames a host fetches for the same reads from the
 *   original-order artifact, by host/mount/frame-loader.ts's rule (each read's missing frames plus
 *   up to 256 KiB of missing neighbours, runs of at most 4 MiB), reads replayed in the profile's
 *   order, range by range; the index blob added. Simulated (no kernel read-ahead beyond what the
 *   profile recorded, no background fetch): the cold-start bench's thaw-cold row is the real one.
 *   --bundle-only skips it (and its conversion).
 */
import { createReadStream, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { bundleSize } from '../../runtime/artifact/bundle.ts'
import {
  buildFsIndex,
  encodeBinaryIndex,
  FsTree,
  framesFor,
  writeLayer,
  type FsIndex,
  type LayerToc,
  type WriteLayerOptions,
} from '../../runtime/format/index.ts'
import { sha256Of } from '../../runtime/oci/digest.ts'
import { layoutOrder, parseProfile, type Profile } from '../../runtime/profile/index.ts'
import { DEFAULT_PROFILED_LEVEL } from '../../registry-edge/convert/converter.ts'
import { planBundle } from '../../registry-edge/convert/bundle-plan.ts'
import { layoutLayers } from '../support/oci-layout.ts'

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string' },
    layout: { type: 'string' },
    tag: { type: 'string', default: 'multi' },
    'profiled-level': { type: 'string' },
    'min-cold': { type: 'string' },
    'bundle-only': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
})
if (!args.profile) {
  console.error('usage: bundle-bytes.ts --profile FILE [--layout DIR --tag T] [--profiled-level N]')
  process.exit(2)
}
const MB = 1e6

function defaultLayout(): string {
  const root = '/var/tmp/thaw-cache/bench-images'
  for (const key of readdirSync(root)) {
    const dir = join(root, key, 'layout')
    try {
      readFileSync(join(dir, 'index.json'))
      return dir
    } catch {}
  }
  throw new Error(`no bench image layout under ${root}: run the cold-start bench once`)
}

async function convert(
  layers: ReturnType<typeof layoutLayers>['layers'],
  options: Partial<WriteLayerOptions>,
): Promise<{ index: FsIndex; seconds: number }> {
  const t0 = performance.now()
  const tocs: LayerToc[] = []
  const discard = { write: async () => {} }
  for (const layer of layers) {
    tocs.push(
      await writeLayer(() => createReadStream(layer.path, { highWaterMark: 1 << 20 }), discard, {
        compression: layer.compression,
        safety: { allowDevices: true },
        ...options,
      }),
    )
  }
  return { index: buildFsIndex(tocs), seconds: (performance.now() - t0) / 1000 }
}

/** frame-loader.ts's on-demand rule, over the index alone. */
function onDemandBytes(index: FsIndex, profile: Profile): { bytes: number; requests: number } {
  const NEIGHBOUR_BYTES = 256 * 1024
  const MAX_RUN_BYTES = 4 * 1024 * 1024
  const tree = new FsTree(index)
  const present = index.blobs.map((b) => new Uint8Array(b.frames.length))
  let bytes = 0
  let requests = 0
  const fetchRun = (b: number, first: number, last: number) => {
    const frames = index.blobs[b]!.frames
    const start = frames[first]!.coff
    let extra = 0
    for (let i = last + 1; i < frames.length && present[b]![i] === 0; i++) {
      extra += frames[i]!.clen
      if (extra > NEIGHBOUR_BYTES || frames[i]!.coff + frames[i]!.clen - start > MAX_RUN_BYTES)
        break
      last = i
    }
    for (let i = first; i <= last; i++) present[b]![i] = 1
    bytes += frames[last]!.coff + frames[last]!.clen - start
    requests++
  }
  for (const entry of profile.entries) {
    const node = tree.lookup(entry.path)
    if (node?.type !== 'file' || node.size === 0) continue
    for (const [offset, length] of entry.ranges) {
      const span = framesFor(index, node, offset, length)
      if (!span) continue
      const frames = index.blobs[span.blob]!.frames
      let run: number | undefined
      for (let i = span.first; i <= span.last + 1; i++) {
        const missing = i <= span.last && present[span.blob]![i] === 0
        const tooLong =
          run !== undefined &&
          frames[i] &&
          frames[i]!.coff + frames[i]!.clen - frames[run]!.coff > MAX_RUN_BYTES
        if (run !== undefined && (!missing || tooLong)) {
          fetchRun(span.blob, run, i - 1)
          run = undefined
        }
        if (missing && run === undefined) run = i
      }
    }
  }
  return { bytes, requests }
}

const profileBytes = readFileSync(args.profile)
const profile = parseProfile(profileBytes)
const read = profile.entries.reduce((n, e) => n + e.ranges.reduce((m, [, l]) => m + l, 0), 0)
const { layers } = layoutLayers(args.layout ?? defaultLayout(), args.tag)
// What the edge's converter passes the Writer for a re-layout (converter.ts, convert-worker.ts).
const { order, ranges } = layoutOrder([profile])
const layout: Partial<WriteLayerOptions> = {
  order,
  ranges: new Map(ranges),
  orderedLevel: Number(args['profiled-level'] ?? DEFAULT_PROFILED_LEVEL),
  ...(args['min-cold'] ? { minColdBytes: Number(args['min-cold']) } : {}),
}

const relaid = await convert(layers, layout)
const indexBlob = (index: FsIndex) => {
  const bin = encodeBinaryIndex(index)
  return { mediaType: 'application/octet-stream', digest: sha256Of(bin), size: bin.length }
}
const header = planBundle({
  artifact: sha256Of(Buffer.from('artifact')),
  profile: sha256Of(profileBytes),
  indexBlob: indexBlob(relaid.index),
  index: relaid.index,
  merged: profile,
})
const bundle = bundleSize(header)
const frames = (i: FsIndex) => i.blobs.reduce((n, b) => n + b.frames.length, 0)
const noProfile = async () => {
  const original = await convert(layers, {})
  const firstIndex = indexBlob(original.index).size
  const demand = onDemandBytes(original.index, profile)
  return {
    onDemandBytes: demand.bytes + firstIndex,
    requests: demand.requests,
    indexBytes: firstIndex,
    fetchedOverRead: (demand.bytes + firstIndex) / read,
    frames: frames(original.index),
    convertSeconds: original.seconds,
  }
}
const result = {
  image: `${args.layout ?? defaultLayout()}:${args.tag}`,
  profile: { file: args.profile, files: profile.entries.length, readBytes: read },
  withProfile: {
    bundleBytes: bundle,
    bundleRecords: header.records.length,
    indexBytes: header.records[0]!.length,
    bundleOverRead: bundle / read,
    frames: frames(relaid.index),
    convertSeconds: relaid.seconds,
  },
  noProfile: args['bundle-only'] ? undefined : await noProfile(),
}
if (args.json) console.log(JSON.stringify(result, null, 2))
else {
  console.log(`image ${result.image}; profile ${args.profile}: ${profile.entries.length} files`)
  console.log(`read by the function (profile ranges): ${(read / MB).toFixed(1)} MB`)
  console.log(
    `with profile: bundle ${(bundle / MB).toFixed(1)} MB (${(bundle / read).toFixed(2)} × read; ` +
      `${header.records.length} records, index ${(header.records[0]!.length / 1024).toFixed(0)} KiB); ` +
      `${frames(relaid.index)} frames; converted in ${relaid.seconds.toFixed(1)} s`,
  )
  const first = result.noProfile
  if (first)
    console.log(
      `no profile (simulated on-demand): ${(first.onDemandBytes / MB).toFixed(1)} MB ` +
        `(${first.fetchedOverRead.toFixed(2)} × read; ${first.requests} range requests); ` +
        `${first.frames} frames; converted in ${first.convertSeconds.toFixed(1)} s`,
    )
}
