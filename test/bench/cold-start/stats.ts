/** Order statistics of a sample (nearest-rank on the sorted values; no interpolation). */
export interface Spread {
  n: number
  median: number
  min: number
  max: number
  /** 25th and 75th percentiles. */
  p25: number
  p75: number
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('spread of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return {
    n: sorted.length,
    median,
    min: sorted[0]!,
    max: sorted.at(-1)!,
    p25: at(0.25),
    p75: at(0.75),
  }
}

/** Median of each key over samples that have it. */
export function medianByKey(records: readonly Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))]
  return Object.fromEntries(
    keys.map((k) => [k, spread(records.flatMap((r) => (k in r ? [r[k]!] : []))).median]),
  )
}

/** a / b, or undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b
}
