import { describe, expect, it } from 'vitest'
import { RecentInvocations } from '../../../../host/logs/recent-invocations.ts'
import { RecentColdStarts } from '../../../../host/pool/recent-cold-starts.ts'
import { sectionUpdate } from '../../../../host/server/dashboard/section-view.ts'
import { pageView, type DashboardData } from '../../../../host/server/dashboard/views.tsx'

/** What a host with no apps, nodes, images or edges shows, with these recent records. */
function data(invocations: RecentInvocations, coldStarts: RecentColdStarts): DashboardData {
  return {
    startedAt: '2026-12-03T16:00:00.000Z',
    apps: [],
    record: () => undefined,
    pool: { warm: { ready: 0, target: 1 }, apps: {} },
    coldStarts: coldStarts.list(),
    invocations: invocations.list(),
    profiles: [],
    edges: [],
    edgeImage: () => undefined,
  }
}

const timings = { resolve: 1, mount: 2, prefetch: 0, sandbox: 3, load: 4, first: 5, total: 15 }

describe('pageView', () => {
  it('gives an empty table one row that says why, under its head', () => {
    const view = pageView(data(new RecentInvocations(), new RecentColdStarts()))
    expect(view.invocations.rows).toEqual([
      { id: 'invocations-empty', html: expect.stringContaining('No invocation yet.') },
    ])
    expect(view.invocations.rows![0]!.html).toContain('colspan="9"')
    expect(view.summary.lead).toContain('0 apps')
  })

  it('links a cold invocation to its waterfall only while that is kept, and then replaces that row alone', () => {
    const invocations = new RecentInvocations()
    const coldStarts = new RecentColdStarts(1)
    const invocation = (id: string) =>
      invocations.add({
        id,
        app: 'a',
        function: 'f',
        trigger: 'http',
        status: 200,
        durationMs: 1,
        cold: true,
      })
    const coldStart = (id: string) =>
      coldStarts.add({
        ...timings,
        bytes: 10,
        requests: 1,
        invocationId: id,
        app: 'a',
        image: 'i',
        node: 'a-0',
      })
    coldStart('one')
    invocation('one')
    const before = pageView(data(invocations, coldStarts))
    expect(before.invocations.rows![0]!.html).toContain('<a href="#cold-one">cold start</a>')

    coldStart('two') // one cold start kept: the first one's goes
    invocation('two')
    const after = pageView(data(invocations, coldStarts))
    const [two, one] = after.invocations.rows!
    expect(two!.html).toContain('<a href="#cold-two">cold start</a>')
    expect(one!.html).not.toContain('<a')
    expect(one!.html).toContain('cold start')
    const update = sectionUpdate('invocations', before.invocations, after.invocations)
    expect(update.match(/data-invocation="[^"]+"/g)).toEqual([
      'data-invocation="two"',
      'data-invocation="one"',
    ])
    expect(update).toContain('<tr hx-swap-oob="true" id="invocation-one"')
  })
})
