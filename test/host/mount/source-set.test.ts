import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SourceSet } from '../../../host/mount/source-set.ts'
import { HostMetrics } from '../../../host/server/host-metrics.ts'
import { onCleanup } from '../../support/cleanup.ts'

const URLS = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3']
const coded = (code: string) => Object.assign(new Error(code), { code })

describe('SourceSet', () => {
  let set: SourceSet | undefined
  afterEach(() => set?.close())

  it('asks the sources in preference order and answers with the first that succeeds', async () => {
    set = new SourceSet({ urls: URLS })
    const asked: string[] = []
    const { value, source } = await set.call('x', async (s) => {
      asked.push(s.url)
      if (s.url !== URLS[1]) throw new Error('refused')
      return 42
    })
    expect([value, source.url, asked]).toEqual([42, URLS[1], URLS.slice(0, 2)])
  })

  it('tries a failed source after the healthy ones until retryAfterMs has passed', async () => {
    set = new SourceSet({ urls: URLS, retryAfterMs: 60_000 })
    await set.call('x', async (s) => {
      if (s.url === URLS[0]) throw new Error('reset')
      return 1
    })
    expect(set.order().map((s) => s.url)).toEqual([URLS[1], URLS[2], URLS[0]])
  })

  it('moves on when a source misses the deadline', async () => {
    set = new SourceSet({ urls: URLS.slice(0, 2), requestTimeoutMs: 50 })
    const { source } = await set.call('x', (s, signal) =>
      s.url === URLS[0]
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        : Promise.resolve(1),
    )
    expect(source.url).toBe(URLS[1])
    expect(set.order()[1]!.url).toBe(URLS[0])
  })

  it.each([
    // every source lacks it: the not-found error itself, so callers can say "no such image"
    ['all not found', () => coded('MANIFEST_UNKNOWN'), 'MANIFEST_UNKNOWN'],
    // every source is unreachable: one error naming all of them
    ['all failing', () => new Error('ECONNREFUSED'), 'SOURCES_UNAVAILABLE'],
  ])('with %s throws %s', async (_name, error, code) => {
    set = new SourceSet({ urls: URLS })
    await expect(set.call('x', async () => Promise.reject(error()))).rejects.toMatchObject({ code })
  })

  it('does not ask other sources about a request none can answer differently', async () => {
    set = new SourceSet({ urls: URLS })
    let asked = 0
    await expect(
      set.call('x', async () => {
        asked++
        throw coded('DIGEST_INVALID')
      }),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' })
    expect(asked).toBe(1)
  })
})

describe('SourceSet: nearest edge', () => {
  /** A registry-shaped server answering GET /v2/ after `latencyMs` (a near or a far edge). */
  async function edge(latencyMs: number) {
    const server = createServer((_req, res) => {
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
        latencyMs,
      )
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    onCleanup('servers', () => new Promise<void>((r) => server.close(() => r())))
    return { url, server }
  }
  let set: SourceSet | undefined
  afterEach(() => set?.close())

  it('prefers the faster healthy edge over the order of the flags, moves to the next when it dies, and shows both in /metrics', async () => {
    const far = await edge(400)
    const near = await edge(0)
    const origin = 'http://127.0.0.1:9'
    set = new SourceSet({ urls: [far.url, near.url, origin], measured: 2, probeIntervalMs: 60_000 })
    expect(set.order().map((s) => s.url)).toEqual([far.url, near.url, origin]) // nothing measured yet
    await set.probe()
    await set.probe()
    expect(set.order().map((s) => s.url)).toEqual([near.url, far.url, origin])
    const metrics = new HostMetrics()
    metrics.watchEdges(() => set!.edges())
    let text = await metrics.registry.metrics()
    expect(text).toContain(`thaw_host_edge_preferred{edge="${near.url}"} 1`)
    expect(text).toContain(`thaw_host_edge_preferred{edge="${far.url}"} 0`)
    const rtt = (url: string) =>
      Number(text.match(new RegExp(`thaw_host_edge_rtt_seconds\\{edge="${url}"\\} (\\S+)`))![1])
    expect(rtt(far.url)).toBeGreaterThan(rtt(near.url))

    // The near edge dies: the next probe marks it down, and the far one is tried first.
    near.server.closeAllConnections()
    await new Promise<void>((r) => near.server.close(() => r()))
    await set.probe()
    expect(set.order().map((s) => s.url)).toEqual([far.url, origin, near.url])
    text = await metrics.registry.metrics()
    expect(text).toContain(`thaw_host_edge_healthy{edge="${near.url}"} 0`)
    expect(text).toContain(`thaw_host_edge_preferred{edge="${far.url}"} 1`)
  })

  it('keeps the preferred edge until another is clearly faster', async () => {
    const a = await edge(0)
    const b = await edge(0)
    set = new SourceSet({ urls: [a.url, b.url], measured: 2, probeIntervalMs: 60_000 })
    await set.probe()
    const first = set.order()[0]!.url
    for (let i = 0; i < 5; i++) await set.probe()
    // Two edges alike: the one chosen first stays first, whichever answered a probe faster since.
    expect(set.order()[0]!.url).toBe(first)
  })
})
