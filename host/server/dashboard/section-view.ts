import { createHash } from 'node:crypto'

/**
 * One section of the dashboard as a page shows it: a lead (the markup above its table, such as
 * the summary line or the waterfall's legend) and its table's rows, each a `<tr id="…">` whose
 * id is unique in the page (rowId).
 */
export interface SectionView {
  lead: string
  /** In the order shown; absent when the section has no table. */
  rows?: Row[]
}

export interface Row {
  id: string
  /** `<tr id="<id>" …>…</tr>` */
  html: string
}

/** The element ids a section's parts have in the page. */
export const leadId = (section: string) => `${section}-lead`
export const rowsId = (section: string) => `${section}-rows`

/**
 * A row's element id: `<prefix>-<key>` when the key is made of letters, digits, `-` and `_`
 * (invocation ids, node ids, app names), else `<prefix>-<hash of the key>` (image references,
 * edge URLs), so an id is always a plain CSS selector.
 */
export function rowId(prefix: string, key: string): string {
  if (/^[\w-]{1,80}$/.test(key)) return `${prefix}-${key}`
  return `${prefix}-h${createHash('sha256').update(key).digest('hex').slice(0, 20)}`
}

/**
 * What turns the page's `before` into `after`, as htmx out-of-band swaps: '' when nothing changed.
 * A changed lead replaces the lead's content; a row that went is deleted, a changed row replaced,
 * new rows inserted after the row before them (or at the top), so one new invocation in a table
 * of 1000 costs one row and the delete of the one that fell off. Rows that stayed but moved
 * (a reordering) and an unknown `before` (a page this stream did not see) send the whole table
 * body.
 */
export function sectionUpdate(
  section: string,
  before: SectionView | undefined,
  after: SectionView,
): string {
  let out = ''
  if (before?.lead !== after.lead) {
    out += oob(`<div hx-swap-oob="innerHTML:#${leadId(section)}">${after.lead}</div>`)
  }
  if (after.rows) out += rowsUpdate(rowsId(section), before?.rows, after.rows)
  return out
}

function rowsUpdate(body: string, before: Row[] | undefined, after: Row[]): string {
  const whole = () =>
    oob(`<tbody id="${body}" hx-swap-oob="true">${after.map((r) => r.html).join('')}</tbody>`)
  if (!before) return whole()
  const old = new Map(before.map((r) => [r.id, r.html]))
  const now = new Set(after.map((r) => r.id))
  const stayedBefore = before.filter((r) => now.has(r.id))
  const stayedAfter = after.filter((r) => old.has(r.id))
  if (stayedBefore.some((r, i) => r.id !== stayedAfter[i]!.id)) return whole()

  let out = before
    .filter((r) => !now.has(r.id))
    .map((r) => oob(`<tr id="${r.id}" hx-swap-oob="delete"></tr>`))
    .join('')
  // New rows in runs, each run after the row that precedes it (it is in the page by then: htmx
  // swaps out-of-band elements in document order).
  let run: string[] = []
  let anchor: string | undefined
  const flush = () => {
    if (run.length === 0) return
    const where = anchor === undefined ? `afterbegin:#${body}` : `afterend:#${anchor}`
    out += oob(`<tbody hx-swap-oob="${where}">${run.join('')}</tbody>`)
    run = []
  }
  for (const r of after) {
    if (!old.has(r.id)) {
      run.push(r.html)
      continue
    }
    flush()
    anchor = r.id
    if (old.get(r.id) !== r.html) out += oob(r.html.replace(/^<tr\b/, '<tr hx-swap-oob="true"'))
  }
  flush()
  return out
}

/**
 * Each swap in a `<template>` of its own: table parts (`<tr>`, `<tbody>`) parse only where a
 * table may hold them, and a template is such a place (htmx swaps the out-of-band elements of
 * each template of an answer, in order). Side by side, the parser would drop a `<tbody>` that
 * follows a `<tr>` and keep its rows without their swap.
 */
function oob(html: string): string {
  return `<template>${html}</template>`
}
