import type { ColdStartSample, PendingContender } from './contender.ts'
import type { LinkSpec } from './link.ts'
import { medianByKey, spread, type Spread } from './stats.ts'

/** The JSON written under results/: everything needed to compare a later run with this one. */
export interface BenchResults {
  schema: 1
  /** The command line as run. */
  command: string
  mode: 'quick' | 'full'
  /** ISO 8601, when the run started. */
  date: string
  durationS: number
  machine: Record<string, string | number>
  images: ImageFacts[]
  links: LinkResult[]
  contenders: { id: string; label: string; description: string; offline: boolean }[]
  pending: PendingContender[]
  samples: SampleRecord[]
  summary: SummaryRow[]
}

export interface ImageFacts {
  name: string
  layers: number
  compressedBytes: number
  unpackedBytes: number
  description: string
}

export interface LinkResult extends LinkSpec {
  calibration?: LinkCalibration
}

/** What the emulated link really delivered, measured with curl from the client's side. */
export interface LinkCalibration {
  /** Median time to first byte of `GET /v2/` on a kept-alive connection (≈ one round trip). */
  rttMs: number
  /** The same straight to the registry on the host's loopback, for comparison. */
  loopbackRttMs: number
  /** Download rate of one large blob through the link. */
  throughputMbit: number
  loopbackThroughputMbit: number
  blobBytes: number
  /** CPU the delay proxy used for that download, per MB moved. */
  proxyCpuMsPerMB: number
}

export interface SampleRecord extends Partial<ColdStartSample> {
  link: string
  image: string
  contender: string
  run: number
  /** Set when the start failed; the run then has no figures. */
  error?: string
}

export interface SummaryRow {
  link: string
  image: string
  contender: string
  ttfbMs: Spread
  bytesFetched: number
  requests: number
  phases: Record<string, number>
  extra: Record<string, number>
  failures: number
}

/** Medians and spreads per (link, image, contender), in the order the samples first appear. */
export function summarize(samples: readonly SampleRecord[]): SummaryRow[] {
  const groups = new Map<string, SampleRecord[]>()
  for (const s of samples) {
    const key = `${s.link}\n${s.image}\n${s.contender}`
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  const rows: SummaryRow[] = []
  for (const group of groups.values()) {
    const ok = group.filter((s) => s.error === undefined && s.ttfbMs !== undefined)
    const first = group[0]!
    if (ok.length === 0) continue
    rows.push({
      link: first.link,
      image: first.image,
      contender: first.contender,
      ttfbMs: spread(ok.map((s) => s.ttfbMs!)),
      bytesFetched: spread(ok.map((s) => s.bytesFetched ?? 0)).median,
      requests: spread(ok.map((s) => s.requests ?? 0)).median,
      phases: medianByKey(ok.map((s) => s.phases ?? {})),
      extra: medianByKey(ok.map((s) => s.extra ?? {})),
      failures: group.length - ok.length,
    })
  }
  return rows
}
