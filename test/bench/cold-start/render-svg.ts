import type { BenchResults } from './results.ts'

const WIDTH = 900
const LEFT = 330
const RIGHT = 40
const BAR = 16
const GAP = 6
const TICKS_S = [0.1, 0.3, 1, 3, 10, 30, 100, 300]
const COLORS: Record<string, string> = {
  'full-pull': '#c0504d',
  'cached-cold': '#4f81bd',
  'cached-warm': '#9bbb59',
  'stargz-optimized': '#4bacc6',
  'thaw-cold': '#f79646',
  'thaw-profile': '#8064a2',
  'thaw-again': '#2c4d75',
  'snapshotter-cold': '#c9a227',
  'snapshotter-profile': '#7f6000',
}

/**
 * A horizontal bar chart of the median time to first response per link, contender and image, on
 * a log scale (full pulls and cached starts differ by 10–100×), with a whisker from min to max.
 * Plain SVG 1.1, no scripts or external references, so it embeds in a README.
 */
export function renderSvg(r: BenchResults): string {
  const offline = new Set(r.contenders.filter((c) => c.offline).map((c) => c.id))
  const groups = r.links.map((link) => ({
    title: link.label,
    rows: r.summary.filter((row) =>
      offline.has(row.contender) ? link === r.links[0] : row.link === link.name,
    ),
  }))
  const all = r.summary.flatMap((row) => [row.ttfbMs.min, row.ttfbMs.max])
  const lo = Math.max(0.05, Math.min(...all, 1000) / 1000 / 1.5)
  const hi = Math.max(1, (Math.max(...all, 0) / 1000) * 1.5)
  const xOf = (ms: number) =>
    LEFT +
    ((Math.log10(Math.max(ms / 1000, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
      (WIDTH - LEFT - RIGHT)
  const body: string[] = []
  let y = 40
  for (const group of groups) {
    if (group.rows.length === 0) continue
    body.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(group.title)}</text>`)
    y += 22
    for (const row of group.rows) {
      const name = r.contenders.find((c) => c.id === row.contender)?.label ?? row.contender
      const note = offline.has(row.contender) ? ' (local disk)' : ''
      const color = COLORS[row.contender] ?? '#777'
      const t = row.ttfbMs
      body.push(
        `<text x="${LEFT - 8}" y="${y + BAR - 4}" text-anchor="end">${esc(`${name}${note}, ${row.image}`)}</text>`,
        `<rect x="${LEFT}" y="${y}" width="${(xOf(t.median) - LEFT).toFixed(1)}" height="${BAR}" fill="${color}"/>`,
        `<line x1="${xOf(t.min).toFixed(1)}" x2="${xOf(t.max).toFixed(1)}" y1="${y + BAR / 2}" y2="${y + BAR / 2}" stroke="#222"/>`,
        `<text x="${(xOf(t.max) + 4).toFixed(1)}" y="${y + BAR - 4}" font-size="11">${(t.median / 1000).toFixed(2)} s</text>`,
      )
      y += BAR + GAP
    }
    y += 10
  }
  const pending = r.pending.filter((p) => p.id !== 'thaw-profile-28-vs-1')
  if (pending.length > 0) {
    body.push(
      `<text x="10" y="${y + 12}" font-style="italic">pending, not measured yet: ${esc(pending.map((p) => p.label).join('; '))}</text>`,
    )
    y += 24
  }
  const axis = TICKS_S.filter((t) => t >= lo && t <= hi).flatMap((t) => [
    `<line x1="${xOf(t * 1000).toFixed(1)}" x2="${xOf(t * 1000).toFixed(1)}" y1="30" y2="${y}" stroke="#ddd"/>`,
    `<text x="${xOf(t * 1000).toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="11">${t} s</text>`,
  ])
  const height = y + 24
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(`Time to first response, cold start (${r.mode} run, ${r.date.slice(0, 10)}; median, whisker min–max; log scale)`)}</text>`,
    ...axis,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
}
