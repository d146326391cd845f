import type { Digest } from '../../runtime/oci/digest.ts'
import {
  normalizeRanges,
  PROFILE_LIMITS,
  type Profile,
  type ProfileEntry,
} from '../../runtime/profile/profile.ts'

export interface AccessRecorderOptions {
  /** The image manifest recorded against (the profile's subject). */
  subject: Digest
  workload?: string
  /** Recording stops by itself after this long (default 10 s, stargz-snapshotter's default). */
  limitMs?: number
  /**
   * The clock (entries' `t`) and the time limit start at the first access, not at construction:
   * for a recorder set up before anything runs (the snapshotter's, at an image's pull).
   */
  fromFirstAccess?: boolean
  now?: () => number
}

/**
 * Records the first access to every file of a mount and the byte ranges read, with times relative
 * to the start, until `stop()` or the time limit (formats.md §8.8). With kernel caching each page
 * reaches the filesystem once, so what arrives here is already "first access", widened to the
 * kernel's readahead windows. Cost per call: one Map lookup and an array push (ranges are merged
 * once, at stop), so it can stay on for the first cold starts of every image.
 */
export class AccessRecorder {
  readonly #subject: Digest
  readonly #workload: string
  readonly #now: () => number
  readonly #limitMs: number
  /** When the clock started (undefined until the first access with `fromFirstAccess`). */
  #start: number | undefined
  readonly #entries = new Map<string, { t: number; ranges: [number, number][] }>()
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #profile: Profile | undefined

  constructor(options: AccessRecorderOptions) {
    this.#subject = options.subject
    this.#workload = options.workload ?? ''
    this.#now = options.now ?? (() => performance.now())
    this.#limitMs = options.limitMs ?? 10_000
    if (!options.fromFirstAccess) this.#begin()
  }

  #begin(): number {
    this.#start = this.#now()
    this.#timer = setTimeout(() => this.stop(), this.#limitMs)
    this.#timer.unref()
    return this.#start
  }

  get recording(): boolean {
    return !this.#stopped
  }

  open(path: string): void {
    this.#entry(path)
  }

  read(path: string, offset: number, length: number): void {
    const entry = this.#entry(path)
    if (entry && entry.ranges.length < PROFILE_LIMITS.rangesPerEntry * 4) {
      entry.ranges.push([offset, length])
    }
  }

  /** Stops recording (idempotent) and returns the profile, entries in first-access order. */
  stop(): Profile {
    if (!this.#profile) {
      this.#stopped = true
      clearTimeout(this.#timer)
      const entries: ProfileEntry[] = []
      for (const [path, e] of this.#entries) {
        const ranges = normalizeRanges(e.ranges).slice(0, PROFILE_LIMITS.rangesPerEntry)
        entries.push({ path, t: Math.round(e.t * 1000) / 1000, ranges })
      }
      this.#profile = {
        version: 1,
        subject: this.#subject,
        workload: this.#workload,
        runs: 1,
        entries: entries.slice(0, PROFILE_LIMITS.entries),
      }
    }
    return this.#profile
  }

  #entry(path: string): { t: number; ranges: [number, number][] } | undefined {
    if (this.#stopped) return undefined
    let entry = this.#entries.get(path)
    if (!entry) {
      const start = this.#start ?? this.#begin()
      entry = { t: Math.max(0, this.#now() - start), ranges: [] }
      this.#entries.set(path, entry)
    }
    return entry
  }
}
