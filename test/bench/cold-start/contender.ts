import type { BenchImage } from './build-images.ts'
import type { BenchLink } from './link.ts'
import type { BenchRegistry } from './registry.ts'

/**
 * One way of starting the benchmark's function cold. The runner calls `prepare` once per
 * (link, image), then `coldStart` for each run (interleaved with the other contenders), then
 * `cleanup`. A contender measures itself: t0 is the moment the platform decides to start the
 * function (the HTTP request arrives, or `ctr image pull` starts), the end is the first byte of
 * the function's HTTP answer.
 */
export interface Contender {
  /** Stable id used in the JSON results: `full-pull`, `cached-cold`, `thaw-profile` … */
  readonly id: string
  readonly label: string
  /** What the row measures, one sentence for the README. */
  readonly description: string
  /** Does not use the network (the same figure on every link; run once, on loopback). */
  readonly offline: boolean
  /** False for the image kinds this contender has nothing to say about (see `why`). */
  appliesTo(image: BenchImage): boolean
  prepare(context: ContenderContext): Promise<void>
  coldStart(signal: AbortSignal): Promise<ColdStartSample>
  /** Idempotent; also called after a failed prepare. */
  cleanup(): Promise<void>
}

export interface ContenderContext {
  image: BenchImage
  /** The OCI layout the image was built in (its config is read from there). */
  layout: string
  /** The image's reference in the benchmark registry, as reached through `link`. */
  reference: string
  registry: BenchRegistry
  link: BenchLink
  /** Host directory with the thaw worker (`worker.mjs`), mode o+rx. */
  workerDir: string
  /** The benchmark's cache (built images, registry storage, tools built for the bench). */
  cacheDir: string
  /** Scratch space for this contender (removed by the runner afterwards). */
  scratchDir: string
  log: (line: string) => void
}

export interface ColdStartSample {
  /** From t0 to the first byte of the function's HTTP answer. */
  ttfbMs: number
  /** Bytes the registry sent during the start (response bodies and headers). */
  bytesFetched: number
  /** HTTP requests the registry answered during the start. */
  requests: number
  /** Consecutive phases from t0, in order; they add up to about `ttfbMs`. */
  phases: Record<string, number>
  /** HTTP status of the function's answer (200 when it worked). */
  status: number
  /** Anything else worth keeping (bytes the function read, CPU of the link emulation …). */
  extra?: Record<string, number>
}

/** A slot kept for a contender that is not built yet: listed in the results as pending. */
export interface PendingContender {
  readonly id: string
  readonly label: string
  readonly description: string
  readonly pending: string
}
