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

/**
 * Issue 7's targets, each with the value this run measured (or pending when a row it needs did
 * not run). The cached row of the single image is the multi image's (the same tree).
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
  const x = (v: number | undefined) => (v === undefined ? undefined : `${v.toFixed(2)}×`)
  const out: TargetCheck[] = []
  const image = r.images.some((i) => i.name === 'multi') ? 'multi' : (r.images[0]?.name ?? 'small')
  const add = (
    figure: string,
    target: string,
    value: number | undefined,
    ok: (v: number) => boolean,
    from: string,
  ) =>
    out.push({
      figure,
      target,
      measured: x(value),
      met: value === undefined ? undefined : ok(value),
      from,
    })
  add(
    'thaw with profile / cached start (page cache dropped), same region',
    '≤ 1.1×',
    ratio(ttfb('thaw-profile', image, 'same-region'), ttfb('cached-cold', image, 'same-region')),
    (v) => v <= 1.1,
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
  // Measured in the same run on every link (DESIGN.md: at least 2× faster on every link).
  for (const link of r.links) {
    add(
      `stargz-snapshotter optimized eStargz / thaw with profile, ${link.name}`,
      '≥ 2×',
      ratio(ttfb('stargz-optimized', image, link.name), ttfb('thaw-profile', image, link.name)),
      (v) => v >= 2,
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
  const row = med('thaw-profile', image, 'same-region')
  const read = row?.extra.bytesReadByFunction
  add(
    'bytes fetched at cold start / bytes the function read (profile), same region',
    '≤ 1.5×',
    ratio(row?.bytesFetched, read),
    (v) => v <= 1.5,
    `${image} image`,
  )
  const compressed = r.images.find((i) => i.name === image)?.compressedBytes
  add(
    'bytes fetched at cold start / compressed image size, same region',
    '≤ 0.10×',
    ratio(row?.bytesFetched, compressed),
    (v) => v <= 0.1,
    `${image} image`,
  )
  add(
    'thaw with profile / cached start (page cache dropped), other region',
    '≤ 2×',
    ratio(ttfb('thaw-profile', image, 'other-region'), ttfb('cached-cold', image, 'other-region')),
    (v) => v <= 2,
    `${image} image`,
  )
  return out
}

export function renderTargets(r: BenchResults): string[] {
  return [
    '## Targets (issue 7)',
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
