import { describe, expect, it } from 'vitest'
import {
  rowId,
  sectionUpdate,
  type Row,
  type SectionView,
} from '../../../../host/server/dashboard/section-view.ts'

const tr = (id: string, text = id): Row => ({ id, html: `<tr id="${id}"><td>${text}</td></tr>` })
const view = (rows: Row[], lead = ''): SectionView => ({ lead, rows })
/** One out-of-band swap, in its template. */
const t = (html: string) => `<template>${html}</template>`
/** The rows of 1000 invocations, newest first: `inv-<n>` for n from `newest` down. */
const invocations = (newest: number) =>
  Array.from({ length: 1000 }, (_, i) => tr(`inv-${newest - i}`))

describe('sectionUpdate', () => {
  it('sends nothing when nothing changed', () => {
    expect(sectionUpdate('s', view([tr('a'), tr('b')], 'x'), view([tr('a'), tr('b')], 'x'))).toBe(
      '',
    )
  })

  it('sends one new invocation of 1000 as one row at the top and the delete of the one that fell off', () => {
    const update = sectionUpdate('invocations', view(invocations(1000)), view(invocations(1001)))
    expect(update).toBe(
      t('<tr id="inv-1" hx-swap-oob="delete"></tr>') +
        t(
          '<tbody hx-swap-oob="afterbegin:#invocations-rows"><tr id="inv-1001"><td>inv-1001</td></tr></tbody>',
        ),
    )
  })

  it('replaces a changed row alone, by its id', () => {
    const update = sectionUpdate(
      'nodes',
      view([tr('n-1', 'ready'), tr('n-2', 'ready')]),
      view([tr('n-1', 'ready'), tr('n-2', 'busy')]),
    )
    expect(update).toBe(t('<tr hx-swap-oob="true" id="n-2"><td>busy</td></tr>'))
  })

  it('inserts new rows after the row that precedes them', () => {
    const update = sectionUpdate(
      'apps',
      view([tr('a'), tr('d')]),
      view([tr('a'), tr('b'), tr('c'), tr('d'), tr('e')]),
    )
    expect(update).toBe(
      t(
        '<tbody hx-swap-oob="afterend:#a"><tr id="b"><td>b</td></tr><tr id="c"><td>c</td></tr></tbody>',
      ) + t('<tbody hx-swap-oob="afterend:#d"><tr id="e"><td>e</td></tr></tbody>'),
    )
  })

  it('sends the whole body when rows that stayed changed their order, or the page is unknown', () => {
    const whole = t(
      '<tbody id="apps-rows" hx-swap-oob="true"><tr id="b"><td>b</td></tr><tr id="a"><td>a</td></tr></tbody>',
    )
    expect(sectionUpdate('apps', view([tr('a'), tr('b')]), view([tr('b'), tr('a')]))).toBe(whole)
    expect(sectionUpdate('apps', undefined, view([tr('b'), tr('a')], 'lead'))).toBe(
      t('<div hx-swap-oob="innerHTML:#apps-lead">lead</div>') + whole,
    )
  })

  it('replaces a changed lead inside its element (a section without a table has only that)', () => {
    expect(sectionUpdate('summary', { lead: '<p>1 app</p>' }, { lead: '<p>2 apps</p>' })).toBe(
      t('<div hx-swap-oob="innerHTML:#summary-lead"><p>2 apps</p></div>'),
    )
  })
})

describe('rowId', () => {
  it('keeps plain keys and hashes the others into a plain selector', () => {
    expect(rowId('invocation', '6f1c2a9e-0b1d-4c5e-9a7f-1d2e3f4a5b6c')).toBe(
      'invocation-6f1c2a9e-0b1d-4c5e-9a7f-1d2e3f4a5b6c',
    )
    const image = rowId('image', '127.0.0.1:5000/apps/dash@sha256:ab12 hello')
    expect(image).toMatch(/^image-h[0-9a-f]{20}$/)
    expect(rowId('image', '127.0.0.1:5000/apps/dash@sha256:ab12 other')).not.toBe(image)
  })
})
