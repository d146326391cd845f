import { describe, expect, it } from 'vitest'
import { startDistribution } from './registry.ts'

describe('test support', () => {
  it('starts a real distribution registry that answers the v2 API check and logs requests', async () => {
    const registry = await startDistribution()
    const res = await fetch(`${registry.url}/v2/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    await new Promise((r) => setTimeout(r, 100))
    expect(registry.requests()).toContain('GET /v2/')
    await registry.stop()
  })
})
