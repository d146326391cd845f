import { ThawError } from '../errors.ts'
import { normalizeRanges, type Profile, type ProfileEntry } from './profile.ts'

/**
 * Merges profiles of the same image and workload: the union of paths, each with the union of its
 * ranges, ordered by the median of its first-access times over the runs that read it (ties keep
 * path order so the result is deterministic). Run counts add up.
 */
export function mergeProfiles(profiles: Profile[]): Profile {
  const [first] = profiles
  if (!first) throw new ThawError('PROFILE_INVALID', 'nothing to merge', { fault: 'user' })
  for (const p of profiles) {
    if (p.subject !== first.subject || p.workload !== first.workload) {
      throw new ThawError('PROFILE_MISMATCH', 'profiles of different images or workloads', {
        fault: 'user',
      })
    }
  }
  const byPath = new Map<string, { times: number[]; ranges: [number, number][] }>()
  for (const profile of profiles) {
    for (const entry of profile.entries) {
      let acc = byPath.get(entry.path)
      if (!acc) byPath.set(entry.path, (acc = { times: [], ranges: [] }))
      acc.times.push(entry.t)
      acc.ranges.push(...entry.ranges)
    }
  }
  const entries: ProfileEntry[] = [...byPath].map(([path, acc]) => ({
    path,
    t: median(acc.times),
    ranges: normalizeRanges(acc.ranges),
  }))
  entries.sort((a, b) => a.t - b.t || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return {
    version: 1,
    subject: first.subject,
    workload: first.workload,
    runs: profiles.reduce((n, p) => n + p.runs, 0),
    entries,
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * What an image is laid out by (registry-edge re-layout, runtime/format `writeLayer`'s `order` and
 * `ranges`): the paths of every profile, in the order given (the default workload's first), each
 * once, and the union of the ranges each was read in. A path some profile read whole (no ranges)
 * has none here: it is placed whole as read.
 */
export function layoutOrder(profiles: readonly Profile[]): {
  order: string[]
  ranges: [string, [number, number][]][]
} {
  const ranges = new Map<string, [number, number][] | 'whole'>()
  for (const profile of profiles) {
    for (const entry of profile.entries) {
      const known = ranges.get(entry.path)
      if (known === 'whole') continue
      if (entry.ranges.length === 0) ranges.set(entry.path, 'whole')
      else ranges.set(entry.path, [...(known ?? []), ...entry.ranges])
    }
  }
  const out: [string, [number, number][]][] = []
  for (const [path, r] of ranges) if (r !== 'whole') out.push([path, normalizeRanges(r)])
  return { order: [...ranges.keys()], ranges: out }
}
