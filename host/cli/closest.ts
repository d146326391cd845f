/**
 * The candidate a mistyped word most likely meant ("strat" → "start", "deplyo" → "deploy"), or
 * undefined when none is close: at most a third of the word's letters edited (at least one), a
 * swap of two neighbours counting as one edit (optimal string alignment distance), or the word
 * being the start of exactly one candidate.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  const limit = Math.max(1, Math.floor(w.length / 3))
  let best: { name: string; distance: number } | undefined
  for (const name of candidates) {
    const d = editDistance(w, name.toLowerCase())
    if (d <= limit && (!best || d < best.distance)) best = { name, distance: d }
  }
  if (best) return best.name
  const prefixed = candidates.filter((c) => w.length >= 2 && c.toLowerCase().startsWith(w))
  return prefixed.length === 1 ? prefixed[0] : undefined
}

/** Edits (insert, delete, substitute, swap neighbours) that turn a into b. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}
