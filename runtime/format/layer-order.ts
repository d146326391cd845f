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
    let path: string
    try {
      path = normalizeTarPath(raw.replace(/^\/+/, ''))
    } catch (err) {
      if (err instanceof FormatError) continue
      throw err
    }
    if (!seen.has(path)) out.push(path)
    seen.add(path)
  }
  return out
}
