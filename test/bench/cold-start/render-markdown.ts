import type { BenchResults, LinkResult, SummaryRow } from './results.ts'
import { renderTargets } from './render-targets.ts'
import { ratio } from './stats.ts'

const s = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1)
const mb = (bytes: number) => (bytes / 1e6).toFixed(bytes < 10e6 ? 2 : 0)
const x = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(v < 10 ? 2 : 1)}×`)

/** The report: one section per link, then the link emulation, images and machine. */
export function renderMarkdown(r: BenchResults): string {
  const out: string[] = [
    `# Cold-start benchmark: ${r.mode} run of ${r.date}`,
    '',
    `Command: \`${r.command}\` (${Math.round(r.durationS)} s). Times are seconds from t0 to the first`,
    "byte of the function's HTTP answer: median over the runs, then min–max and the 25th–75th",
    'percentiles. Runs of the contenders are interleaved.',
    '',
  ]
  out.push(...renderTargets(r))
  for (const link of r.links) out.push(...linkSection(r, link))
  out.push(...pendingSection(r), ...linkEmulation(r), ...imageSection(r), ...machineSection(r))
  return `${out.join('\n')}\n`
}

function label(r: BenchResults, id: string): string {
  return r.contenders.find((c) => c.id === id)?.label ?? id
}

/** Rows for a link: its own, plus the offline contenders' (measured once, no network). */
function rowsFor(r: BenchResults, link: string): SummaryRow[] {
  const offline = new Set(r.contenders.filter((c) => c.offline).map((c) => c.id))
  return r.summary.filter((row) => (offline.has(row.contender) ? true : row.link === link))
}

function linkSection(r: BenchResults, link: LinkResult): string[] {
  const rows = rowsFor(r, link.name)
  const offline = new Set(r.contenders.filter((c) => c.offline).map((c) => c.id))
  const layers = (image: string) => r.images.find((i) => i.name === image)?.layers ?? '?'
  const out = [
    `## ${link.label}`,
    '',
    '| contender | image | layers | time to first response (s) | min–max | p25–p75 | runs | MB fetched | requests |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for (const row of rows) {
    const t = row.ttfbMs
    const note = offline.has(row.contender) ? ' (local, no network)' : ''
    const fails = row.failures ? ` (+${row.failures} failed)` : ''
    out.push(
      `| ${label(r, row.contender)}${note} | ${row.image} | ${layers(row.image)} | **${s(t.median)}** | ${s(t.min)}–${s(t.max)} | ${s(t.p25)}–${s(t.p75)} | ${t.n}${fails} | ${offline.has(row.contender) ? '–' : mb(row.bytesFetched)} | ${offline.has(row.contender) ? '–' : row.requests} |`,
    )
  }
  for (const p of r.pending.filter((p) => p.id !== 'thaw-profile-28-vs-1')) {
    out.push(`| ${p.label} | all | | pending | | | | | |`)
  }
  const multi = rows.find((row) => row.contender === 'thaw-profile' && row.image === 'multi')
  const single = rows.find((row) => row.contender === 'thaw-profile' && row.image === 'single')
  const layersRatio = ratio(multi?.ttfbMs.median, single?.ttfbMs.median)
  if (layersRatio !== undefined) {
    out.push('', `thaw with profile, 28 layers / 1 layer: **${x(layersRatio)}**`)
  }
  out.push('', ...ratios(r, rows), '', ...phases(r, rows), '')
  return out
}

function ratios(r: BenchResults, rows: SummaryRow[]): string[] {
  const med = (contender: string, image: string) =>
    rows.find((row) => row.contender === contender && row.image === image)?.ttfbMs.median
  const images = [...new Set(rows.map((row) => row.image))]
  const out = [
    '| image | full pull / cached (dropped) | full pull / cached (warm) | stargz optimized / cached (dropped) | thaw / cached (dropped) | full pull / thaw | stargz optimized / thaw |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const image of images) {
    // the single-layer image has the same tree as multi: its cached start is multi's
    const cachedImage = image === 'single' ? 'multi' : image
    const thaw = med('thaw-profile', image)
    const stargz = med('stargz-optimized', image)
    const vsThaw = (v: number | undefined) => (thaw === undefined ? 'pending' : x(ratio(v, thaw)))
    out.push(
      `| ${image} | ${x(ratio(med('full-pull', image), med('cached-cold', cachedImage)))} | ${x(ratio(med('full-pull', image), med('cached-warm', cachedImage)))} | ${x(ratio(stargz, med('cached-cold', cachedImage)))} | ${thaw === undefined ? 'pending' : x(ratio(thaw, med('cached-cold', cachedImage)))} | ${vsThaw(med('full-pull', image))} | ${vsThaw(stargz)} |`,
    )
  }
  return out
}

function phases(r: BenchResults, rows: SummaryRow[]): string[] {
  const out = ['Phase breakdown (medians, s):', '']
  for (const row of rows) {
    const parts = Object.entries(row.phases).map(([name, ms]) => `${name} ${s(ms)}`)
    const extra = Object.entries(row.extra).map(([name, v]) => `${name} ${v.toFixed(1)}`)
    const also = extra.length ? ` (also, as named: ${extra.join('; ')})` : ''
    out.push(`- ${label(r, row.contender)}, ${row.image}: ${parts.join('; ')}${also}`)
  }
  return out
}

function pendingSection(r: BenchResults): string[] {
  if (r.pending.length === 0) return []
  return [
    '## Pending rows (not measured: no figure is shown for them)',
    '',
    ...r.pending.map(
      (p) => `- **${p.label}** (\`${p.id}\`): ${p.description}. Pending: ${p.pending}.`,
    ),
    '',
  ]
}

function linkEmulation(r: BenchResults): string[] {
  const out = [
    '## Link emulation, as measured',
    '',
    '| link | RTT (ms) | loopback RTT (ms) | throughput (Mbit/s) | loopback (Mbit/s) | delay proxy CPU (ms per MB) |',
    '|---|---|---|---|---|---|',
  ]
  for (const l of r.links) {
    const c = l.calibration
    if (!c) continue
    out.push(
      `| ${l.name} | ${c.rttMs.toFixed(2)} | ${c.loopbackRttMs.toFixed(2)} | ${c.throughputMbit.toFixed(0)} | ${c.loopbackThroughputMbit.toFixed(0)} | ${c.proxyCpuMsPerMB.toFixed(2)} |`,
    )
  }
  return [...out, '']
}

function imageSection(r: BenchResults): string[] {
  return [
    '## Images',
    '',
    '| image | layers | compressed (MB) | unpacked (MB) | what |',
    '|---|---|---|---|---|',
    ...r.images.map(
      (i) =>
        `| ${i.name} | ${i.layers} | ${mb(i.compressedBytes)} | ${mb(i.unpackedBytes)} | ${i.description} |`,
    ),
    '',
  ]
}

function machineSection(r: BenchResults): string[] {
  return ['## Machine', '', ...Object.entries(r.machine).map(([k, v]) => `- ${k}: ${v}`)]
}
