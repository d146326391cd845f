import type { BenchResults } from './results.ts'
import { ratio } from './stats.ts'

export interface TargetCheck {
  figure: string
  target: string
  /** Measured value as text, or undefined when a row it needs did not run. */
  measured?: string
  met?: boolean
  /** What the measured value is made of. */
  from: string
}

/** Issue 17's bound on the prefetch bundle in the other region: half the 27 MB it measured. */
const BUNDLE_BOUND_BYTES = 13.5e6

/**
 * Issue 17's "done when" targets (with the design's goals beside them), each with the value this
 * run measured, or pending when a row it needs did not run. The cached row of the single image is
 * the multi image's (the same tree).
 */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const med = (contender: string, image: string, link: string) => {
    const offline = r.contenders.find((c) => c.id === contender)?.offline
    const cachedImage = contender.startsWith('cached') && image === 'single' ? 'multi' : image
    return r.summary.find(
      (row) =>
        row.contender === contender && row.image === cachedImage && (offline || row.link === link),
    )
  }
  const ttfb = (c: string, i: string, l: string) => med(c, i, l)?.ttfbMs.median
  const times = (v: number) => `${v.toFixed(2)}×`
  const out: TargetCheck[] = []
  const image = r.images.some((i) => i.name === 'multi') ? 'multi' : (r.images[0]?.name ?? 'small')
  const add = (
    figure: string,
    target: string,
    value: number | undefined,
    ok: (v: number) => boolean,
    from: string,
    format: (v: number) => string = times,
  ) =>
    out.push({
      figure,
      target,
      measured: value === undefined ? undefined : format(value),
      met: value === undefined ? undefined : ok(value),
      from,
    })
  add(
    'thaw with profile / cached start (page cache dropped), same region',
    '≤ 1.3× (goal 1.1×)',
    ratio(ttfb('thaw-profile', image, 'same-region'), ttfb('cached-cold', image, 'same-region')),
    (v) => v <= 1.3,
    `${image} image`,
  )
  add(
    'thaw with profile, 28 layers / 1 layer, same region',
    '≤ 1.1×',
    ratio(
      ttfb('thaw-profile', 'multi', 'same-region'),
      ttfb('thaw-profile', 'single', 'same-region'),
    ),
    (v) => v <= 1.1,
    'multi / single',
  )
  add(
    'full pull + unpack + start / thaw with profile, same region',
    '≥ 25×',
    ratio(ttfb('full-pull', image, 'same-region'), ttfb('thaw-profile', image, 'same-region')),
    (v) => v >= 25,
    `${image} image`,
  )
  // Measured in the same run on every link: faster on every link (the design's goal is 2×).
  for (const link of r.links) {
    add(
      `stargz-snapshotter optimized eStargz / thaw with profile, ${link.name}`,
      '> 1× (goal 2×)',
      ratio(ttfb('stargz-optimized', image, link.name), ttfb('thaw-profile', image, link.name)),
      (v) => v > 1,
      `${image} image, same run`,
    )
  }
  // Issue 18: a Kubernetes node (containerd + thaw snapshotter) starts as fast as thaw's host.
  add(
    'containerd + thaw snapshotter / thaw host, both with profile, same region',
    '≤ 1.1×',
    ratio(
      ttfb('snapshotter-profile', image, 'same-region'),
      ttfb('thaw-profile', image, 'same-region'),
    ),
    (v) => v <= 1.1,
    `${image} image, same run`,
  )
  const far = 'other-region'
  const farRow = med('thaw-profile', image, far)
  const farLink = r.links.find((l) => l.name === far)?.calibration
  const cachedFar = ttfb('cached-cold', image, far)
  // The bytes a start fetched take bytes × 8 / throughput on the link as it was measured.
  const wireMs =
    farRow && farLink ? (farRow.bytesFetched * 8) / (farLink.throughputMbit * 1e3) : undefined
  const bound =
    cachedFar === undefined || wireMs === undefined ? undefined : cachedFar + 1.2 * wireMs
  add(
    'thaw with profile / (cached start + 1.2 × wire time of its bytes), other region',
    '≤ 1×',
    ratio(farRow?.ttfbMs.median, bound),
    (v) => v <= 1,
    bound === undefined
      ? `${image} image`
      : `${image} image; bound ${(bound / 1000).toFixed(2)} s, wire ${(wireMs! / 1000).toFixed(2)} s`,
  )
  add(
    'MB fetched by a start with profile (bundle and ranges), other region',
    `≤ ${BUNDLE_BOUND_BYTES / 1e6} MB`,
    farRow?.bytesFetched,
    (v) => v <= BUNDLE_BOUND_BYTES,
    `${image} image; half the 27 MB of issue 17`,
    (v) => `${(v / 1e6).toFixed(1)} MB`,
  )
  // The function reads the same bytes with or without a profile: the profile says how many.
  for (const link of ['same-region', far]) {
    const read = med('thaw-profile', image, link)?.extra.bytesReadByFunction
    add(
      `bytes fetched by a start without profile / bytes the function read, ${link}`,
      '≤ 1.5×',
      ratio(med('thaw-cold', image, link)?.bytesFetched, read),
      (v) => v <= 1.5,
      `${image} image`,
    )
  }
  const row = med('thaw-profile', image, 'same-region')
  add(
    'bytes fetched at cold start / compressed image size, same region',
    '≤ 0.10×',
    ratio(row?.bytesFetched, r.images.find((i) => i.name === image)?.compressedBytes),
    (v) => v <= 0.1,
    `${image} image`,
  )
  return out
}

export function renderTargets(r: BenchResults): string[] {
  return [
    '## Targets (issue 17)',
    '',
    '| figure | target | measured | met |',
    '|---|---|---|---|',
    ...checkTargets(r).map(
      (t) =>
        `| ${t.figure} (${t.from}) | ${t.target} | ${t.measured ?? 'pending'} | ${t.met === undefined ? '–' : t.met ? 'yes' : 'no'} |`,
    ),
    '',
  ]
}
