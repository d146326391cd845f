import { Hasher, type Digest } from '../oci/digest.ts'
import type { LayerCompression } from '../oci/media-types.ts'
import type { BlobSink } from './blob-sink.ts'
import { createCodec, type CodecName } from './codec/codec.ts'
import { decompressLayer } from './codec/decompress-layer.ts'
import { FormatError } from './errors.ts'
import { ExpansionBudget, type ExpansionMeter } from './expansion-budget.ts'
import { FrameWriter } from './frame-writer.ts'
import type { LayerToc } from './layer-toc.ts'
import {
  contentSegments,
  normalizeOrder,
  orderPath,
  readOrdered,
  type ContentSegment,
  type OrderedRead,
} from './layer-order.ts'
import { TarFramer } from './tar-framer.ts'
import { TarParser } from './tar/parser.ts'
import { TarSafety, type TarSafetyOptions } from './tar/safety.ts'

/** The original layer's bytes; a function that opens them anew is needed when `order` is set. */
export type LayerInput =
  AsyncIterable<Uint8Array> | ((signal?: AbortSignal) => AsyncIterable<Uint8Array>)

export interface WriteLayerOptions {
  /** How the original layer is compressed (from its media type: `layerCompression()`). */
  compression: LayerCompression
  codec?: CodecName
  level?: number
  /** Paths to place first, in this order (a profile); the rest follows in the original order. */
  order?: readonly string[]
  /**
   * Byte ranges (`[offset, length]`) of ordered files that a start reads, by the same paths as
   * `order` (a profile's). A placed file's frames are cut at their edges, so a prefetch bundle
   * carries the frames holding these bytes and not the rest of the file (README "Order"). An
   * ordered file without ranges counts as read whole.
   */
  ranges?: ReadonlyMap<string, readonly (readonly [number, number])[]>
  /** An unread stretch of a placed file shorter than this stays in its hot neighbours' frame. */
  minColdBytes?: number
  /**
   * Compression level of the placed frames that hold read bytes (re-layout runs offline: compress
   * them harder); the placed part's other frames use `level`.
   */
  orderedLevel?: number
  groupBytes?: number
  splitBytes?: number
  /** Most content held in memory for the ordered part (default 256 MiB). */
  maxOrderedBytes?: number
  safety?: TarSafetyOptions
  /** The image's expansion limits, shared by its layers in order (default: none). */
  budget?: ExpansionBudget
  signal?: AbortSignal
}

/**
 * Default `minColdBytes`: an unread stretch shorter than this rides in the bundle rather than
 * becoming a frame of its own (a frame costs its header, an index record and the compression
 * context it breaks; measured with test/bench/bundle-bytes.ts, README "Order").
 */
export const DEFAULT_MIN_COLD_BYTES = 16 * 1024

/**
 * The Writer: converts one original layer (tar, tar+gzip, tar+zstd) into a streaming blob written to
 * `sink` (see README.md "Streaming blob") and returns its TOC. The sink only ever receives the
 * blob, front to back; nothing else is written anywhere. A layer that fails a safety check fails
 * the whole call with the check's code (what was written to the sink so far must be discarded);
 * so does a layer that expands past the `budget`, as soon as it does.
 *
 * Without an order: one pass. With an order: a first pass reads the ordered files ahead, they are
 * written first (with their parent directories), a frame boundary marks `prefetchEnd`, and a
 * second pass writes everything else in the original order.
 */
export async function writeLayer(
  input: LayerInput,
  sink: BlobSink,
  options: WriteLayerOptions,
): Promise<LayerToc> {
  const { signal } = options
  const codec = createCodec(options.codec ?? 'zstd', options.level)
  const framing = {
    groupBytes: options.groupBytes ?? 512 * 1024,
    splitBytes: options.splitBytes ?? 1024 * 1024,
  }
  const writer = new FrameWriter(codec, sink, framing.splitBytes + framing.groupBytes + 64 * 1024)
  const framer = new TarFramer(writer, framing)
  const budget = options.budget ?? new ExpansionBudget()
  const open = (meter: ExpansionMeter): AsyncIterable<Uint8Array> =>
    decompressLayer(typeof input === 'function' ? input(signal) : input, options.compression, {
      meter,
    })

  const placed = new Map<string, number>()
  let prefetchEnd = 0
  const order = normalizeOrder(options.order ?? [])
  if (order.length > 0) {
    if (typeof input !== 'function') {
      throw new FormatError(
        'LAYER_ORDER_NEEDS_REOPEN',
        'an order needs a layer input that can be opened twice (pass a function)',
      )
    }
    const meter = budget.meter()
    const ahead = await readOrdered(open(meter), new Set(order), {
      maxBytes: options.maxOrderedBytes ?? 256 * 2 ** 20,
      meter,
      signal,
    })
    if (options.orderedLevel) writer.useCodec(codec, createCodec(codec.name, options.orderedLevel))
    const ranges = new Map<string, readonly (readonly [number, number])[]>()
    for (const [raw, r] of options.ranges ?? []) {
      const path = orderPath(raw)
      if (path !== undefined) ranges.set(path, r)
    }
    const minCold = options.minColdBytes ?? DEFAULT_MIN_COLD_BYTES
    const segments = (path: string, size: number) =>
      contentSegments(size, ranges.get(path), minCold)
    for (const path of order) placeOrdered(path, ahead, framer, placed, segments)
    framer.cut()
    await writer.drain()
    writer.useCodec(codec)
    prefetchEnd = writer.coff
  }

  const meter = budget.meter()
  const diffId = await writeInOriginalOrder(open(meter), framer, placed, options, meter)
  budget.commit(meter)
  framer.finish()
  const blob = await writer.finish()
  return {
    codec: codec.name,
    blob: { digest: blob.digest, size: blob.size },
    diffId,
    tarSize: blob.tarSize,
    frames: writer.frames,
    prefetchEnd,
    entries: framer.entries,
  }
}

/**
 * The main pass: every entry in the original order, each checked by TarSafety and counted by the
 * meter first, except those already placed by the order; returns the DiffID (sha256 of the whole
 * uncompressed tar).
 */
async function writeInOriginalOrder(
  tar: AsyncIterable<Uint8Array>,
  framer: TarFramer,
  placed: Map<string, number>,
  options: WriteLayerOptions,
  meter: ExpansionMeter,
): Promise<Digest> {
  const diffId = new Hasher()
  const safety = new TarSafety(options.safety)
  let skipping = false
  const parser = new TarParser({
    entry(h) {
      const path = safety.check(h)
      meter.addEntry()
      const size = placed.get(path)
      skipping = size !== undefined
      if (skipping && size !== h.size) {
        throw new FormatError('TAR_HEADER_INVALID', 'the layer changed between passes', {
          entry: h.name,
        })
      }
      if (skipping) framer.skip(path, h)
      else framer.begin(path, h)
    },
    data(bytes) {
      if (!skipping) framer.data(bytes)
    },
    entryEnd() {
      if (!skipping) framer.end()
    },
  })
  for await (const chunk of tar) {
    options.signal?.throwIfAborted()
    diffId.update(chunk)
    if (!parser.done) parser.write(chunk)
    await framer.drain()
  }
  parser.end()
  return diffId.digest()
}

/** Writes one ordered entry after its parent directories (and, for a hard link, its target). */
function placeOrdered(
  path: string,
  ahead: OrderedRead,
  framer: TarFramer,
  placed: Map<string, number>,
  segments: (path: string, size: number) => ContentSegment[],
): void {
  const held = ahead.held.get(path)
  if (held === undefined || placed.has(path)) return
  if (held.header.type === 'hardlink') {
    // The target must come first in the tar; without its content at hand the link keeps its place.
    if (!ahead.held.has(held.header.linkName)) return
    placeOrdered(held.header.linkName, ahead, framer, placed, segments)
  }
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const dir = path.slice(0, i)
    const header = ahead.dirs.get(dir)
    if (header !== undefined && !placed.has(dir)) {
      framer.begin(dir, header)
      framer.end()
      placed.set(dir, 0)
    }
  }
  framer.begin(path, held.header)
  // Read and unread stretches never share a frame (the framer cuts between them).
  for (const { start, end, hot } of segments(path, held.content.length))
    framer.data(held.content.subarray(start, end), hot)
  framer.end()
  placed.set(path, held.header.size)
}
