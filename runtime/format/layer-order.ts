import { FormatError } from './errors.ts'
import type { ExpansionMeter } from './expansion-budget.ts'
import type { TarHeader } from './tar/header.ts'
import { TarParser } from './tar/parser.ts'
import { normalizeTarPath } from './tar/safety.ts'

/** An entry read ahead because the order places it first: its header and whole content. */
export interface HeldEntry {
  header: TarHeader
  content: Buffer
}

export interface OrderedRead {
  /** Ordered paths found in the layer, with content, up to the byte budget. */
  held: Map<string, HeldEntry>
  /** Every directory of the layer (headers only): placed before the ordered entries under them. */
  dirs: Map<string, TarHeader>
}

/**
 * First pass of a conversion with an order (profile): a layer is a stream, and a profiled file may
 * come last in it, so the files to place first are read ahead and held in memory (at most
 * `maxBytes`; ordered files beyond the budget keep their original place). Paths are normalised
 * here and entries counted by `meter` (which bounds `dirs`); all other safety checks run in the
 * second pass, over the original order.
 */
export async function readOrdered(
  tar: AsyncIterable<Uint8Array>,
  order: ReadonlySet<string>,
  options: { maxBytes: number; meter?: ExpansionMeter; signal?: AbortSignal },
): Promise<OrderedRead> {
  const { meter, signal } = options
  const held = new Map<string, HeldEntry>()
  const dirs = new Map<string, TarHeader>()
  let budget = options.maxBytes
  let current: { header: TarHeader; parts: Buffer[] } | undefined
  const parser = new TarParser({
    entry(h) {
      meter?.addEntry()
      const path = normalizeTarPath(h.name)
      if (h.type === 'hardlink') h.linkName = normalizeTarPath(h.linkName)
      h.name = path
      if (h.type === 'directory') dirs.set(path, h)
      if (order.has(path) && h.size <= budget && !held.has(path)) {
        budget -= h.size
        current = { header: h, parts: [] }
      }
    },
    data(bytes) {
      current?.parts.push(Buffer.from(bytes))
    },
    entryEnd() {
      if (current)
        held.set(current.header.name, {
          header: current.header,
          content: Buffer.concat(current.parts),
        })
      current = undefined
    },
  })
  for await (const chunk of tar) {
    signal?.throwIfAborted()
    parser.write(chunk)
    if (parser.done) break
  }
  if (!parser.done) parser.end()
  return { held, dirs }
}

/** `/usr/bin/x`, `./usr/bin/x` and `usr/bin/x` name the same entry; unsafe paths never match. */
export function normalizeOrder(order: readonly string[]): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const raw of order) {
    const path = orderPath(raw)
    if (path !== undefined && !seen.has(path)) out.push(path)
    if (path !== undefined) seen.add(path)
  }
  return out
}

/** A profile's path as the tar entry it names; undefined for an unsafe one. */
export function orderPath(raw: string): string | undefined {
  try {
    return normalizeTarPath(raw.replace(/^\/+/, ''))
  } catch (err) {
    if (err instanceof FormatError) return undefined
    throw err
  }
}

/** A stretch of a placed file's content: read at startup (hot) or not (cold). */
export interface ContentSegment {
  start: number
  end: number
  hot: boolean
}

/**
 * Splits a placed file's content `[0, size)` by the byte ranges a profile read (`[offset,
 * length]` pairs, sorted or not). A stretch that was not read becomes a cold segment only when it
 * is at least `minColdBytes` long: a shorter one costs less as part of its hot neighbours' frame
 * than as a frame of its own. No ranges (a profile that read the file but recorded none): the
 * whole file is hot.
 */
export function contentSegments(
  size: number,
  ranges: readonly (readonly [number, number])[] | undefined,
  minColdBytes: number,
): ContentSegment[] {
  if (size === 0) return []
  if (!ranges || ranges.length === 0) return [{ start: 0, end: size, hot: true }]
  const hot: [number, number][] = []
  for (const [offset, length] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const start = Math.max(0, offset)
    const end = Math.min(size, offset + length)
    if (end <= start) continue
    const last = hot[hot.length - 1]
    if (last && start - last[1] < minColdBytes) last[1] = Math.max(last[1], end)
    else hot.push([start < minColdBytes ? 0 : start, end])
  }
  const tail = hot[hot.length - 1]
  if (tail && size - tail[1] < minColdBytes) tail[1] = size
  const out: ContentSegment[] = []
  let at = 0
  for (const [start, end] of hot) {
    if (start > at) out.push({ start: at, end: start, hot: false })
    out.push({ start, end, hot: true })
    at = end
  }
  if (at < size) out.push({ start: at, end: size, hot: false })
  return out
}
