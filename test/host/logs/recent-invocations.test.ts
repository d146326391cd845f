import { describe, expect, it } from 'vitest'
import { RecentInvocations } from '../../../host/logs/recent-invocations.ts'

const invocation = (n: number, app = 'a', status = 200) => ({
  id: `i${n}`,
  app,
  function: 'f',
  trigger: 'http' as const,
  status,
  durationMs: n,
  cold: false,
})

describe('RecentInvocations', () => {
  it('lists newest first, each with its outcome and an ISO time', () => {
    const recent = new RecentInvocations(10)
    recent.add(invocation(1))
    recent.add(invocation(2, 'a', 502))
    const [second, first] = recent.list()
    expect([second!.id, first!.id]).toEqual(['i2', 'i1'])
    expect([second!.outcome, first!.outcome]).toEqual(['failed', 'succeeded'])
    expect(Date.parse(first!.time)).not.toBeNaN()
    expect(Object.keys(first!)).toEqual([...Object.keys(invocation(1)), 'outcome', 'time'])
  })

  it('keeps the last max once the ring has wrapped around several times', () => {
    const recent = new RecentInvocations(3)
    for (let n = 1; n <= 11; n++) recent.add(invocation(n))
    expect(recent.list().map((r) => r.id)).toEqual(['i11', 'i10', 'i9'])
  })

  it('filters by app and stops at the limit', () => {
    const recent = new RecentInvocations(5)
    for (let n = 1; n <= 7; n++) recent.add(invocation(n, n % 2 ? 'odd' : 'even'))
    expect(recent.list({ app: 'odd' }).map((r) => r.id)).toEqual(['i7', 'i5', 'i3'])
    expect(recent.list({ app: 'even', limit: 1 }).map((r) => r.id)).toEqual(['i6'])
    expect(recent.list({ limit: 2 }).map((r) => r.id)).toEqual(['i7', 'i6'])
  })

  it('keeps an explicit outcome (a timer run that failed with no HTTP status)', () => {
    const recent = new RecentInvocations(2)
    recent.add({ ...invocation(1), outcome: 'failed' })
    expect(recent.list()[0]!.outcome).toBe('failed')
  })

  it('tells each listener of each new invocation, with its time, until it unsubscribes', () => {
    const recent = new RecentInvocations(2)
    const told: string[] = []
    const stop = recent.subscribe((r) => told.push(`${r.id} ${Number.isNaN(Date.parse(r.time))}`))
    recent.add(invocation(1))
    stop()
    recent.add(invocation(2))
    expect(told).toEqual(['i1 false'])
  })
})
