import { Counter, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { parseSamples } from '../../../../host/server/dashboard/edge-stats.ts'

describe('parseSamples', () => {
  it('reads what prom-client writes: names, labels and values, comments skipped', async () => {
    const registry = new Registry()
    registry.setDefaultLabels({ region: 'eu' })
    const c = new Counter({
      name: 'thaw_edge_conversions_total',
      help: 'h',
      labelNames: ['result'],
      registers: [registry],
    })
    c.inc({ result: 'converted' }, 3)
    c.inc({ result: 'failed' })
    const samples = parseSamples(await registry.metrics())
    expect(samples).toEqual([
      {
        name: 'thaw_edge_conversions_total',
        labels: { result: 'converted', region: 'eu' },
        value: 3,
      },
      { name: 'thaw_edge_conversions_total', labels: { result: 'failed', region: 'eu' }, value: 1 },
    ])
  })

  it('reads a sample without labels and skips lines that are not samples', () => {
    expect(parseSamples('# HELP x y\nthaw_edge_cache_misses_total 7\n\ngarbage line{\n')).toEqual([
      { name: 'thaw_edge_cache_misses_total', labels: {}, value: 7 },
    ])
  })
})
