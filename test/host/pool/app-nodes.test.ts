import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, type AppLimits } from '../../../host/apps/app-spec.ts'
import { silentHostLogger } from '../../../host/log/host-logger.ts'
import { AppNodes, type StartedNode } from '../../../host/pool/app-nodes.ts'
import type { WorkerClient } from '../../../host/worker/worker-client.ts'

/** A node starter whose starts the test completes by hand; its nodes "die" on demand. */
function fakeStarter() {
  const pending: { id: string; finish: () => void; fail: (e: Error) => void }[] = []
  const nodes = new Map<string, { die: (m: string) => void; destroyed: boolean }>()
  const start = (id: string, signal: AbortSignal) =>
    new Promise<StartedNode>((resolve, reject) => {
      let die!: (m: string) => void
      const exited = new Promise<{ message: string }>((r) => (die = (message) => r({ message })))
      const record = { die, destroyed: false }
      nodes.set(id, record)
      signal.addEventListener('abort', () => reject(signal.reason))
      pending.push({
        id,
        fail: reject,
        finish: () =>
          resolve({
            id,
            client: {} as WorkerClient,
            functions: [],
            routePrefix: 'api',
            timings: { resolve: 0, mount: 0, prefetch: 0, sandbox: 0, load: 0 },
            fetched: () => ({ requests: 0, bytes: 0 }),
            exited,
            firstResponse() {},
            async destroy() {
              record.destroyed = true
              die('stopped')
            },
          }),
      })
    })
  return { start, pending, nodes }
}

function appNodes(limits: Partial<AppLimits>, starter = fakeStarter()) {
  const app = new AppNodes('a', {
    limits: () => ({ ...DEFAULT_LIMITS, ...limits }),
    start: starter.start,
    logger: silentHostLogger,
  })
  return { app, starter }
}

const tick = () => new Promise((r) => setTimeout(r, 0))

describe('AppNodes', () => {
  it('starts no more nodes than maxNodes for a burst, and serves every request once they are ready', async () => {
    const { app, starter } = appNodes({ maxNodes: 2, concurrency: 2, maxQueue: 100 })
    const slots = Array.from({ length: 10 }, () => app.acquire())
    await tick()
    expect(starter.pending.map((p) => p.id)).toEqual(['a-0', 'a-1'])
    for (const p of starter.pending) p.finish()
    await tick()
    // 2 nodes × 2 slots are handed out; the rest wait for releases.
    const first = await Promise.all(slots.slice(0, 4))
    expect(new Set(first.map((s) => s.node.id))).toEqual(new Set(['a-0', 'a-1']))
    expect(app.status().waiting).toBe(6)
    for (const s of first) s.release()
    const rest = await Promise.all(slots.slice(4, 8))
    for (const s of rest) s.release()
    for (const s of await Promise.all(slots.slice(8))) s.release()
    expect(starter.pending).toHaveLength(2)
    expect(app.status().nodes.map((n) => n.served).reduce((a, b) => a + b)).toBe(10)
  })

  it('answers APP_BUSY once the queue is full', async () => {
    const { app } = appNodes({ maxNodes: 1, maxQueue: 2 })
    const waiting = [app.acquire(), app.acquire()]
    await expect(app.acquire()).rejects.toMatchObject({ code: 'APP_BUSY', fault: 'user' })
    void app.close()
    await Promise.allSettled(waiting)
  })

  it('marks only the first slot of a node as its first request', async () => {
    const { app, starter } = appNodes({ maxNodes: 1 })
    const a = app.acquire()
    await tick()
    starter.pending[0]!.finish()
    const s1 = await a
    const s2 = await app.acquire()
    expect([s1.first, s2.first]).toEqual([true, false])
  })

  it('fails what waits when the only node fails to start', async () => {
    const { app, starter } = appNodes({ maxNodes: 1 })
    const a = app.acquire()
    await tick()
    starter.pending[0]!.fail(new Error('no such image'))
    await expect(a).rejects.toMatchObject({ code: 'APP_START_FAILED' })
    expect(app.status().nodes).toEqual([])
  })

  it('replaces a node that dies, for requests that wait', async () => {
    const { app, starter } = appNodes({ maxNodes: 1, concurrency: 1 })
    const a = app.acquire()
    await tick()
    starter.pending[0]!.finish()
    const s1 = await a
    const b = app.acquire() // waits: the only node is busy
    starter.nodes.get('a-0')!.die('killed by SIGKILL')
    await tick()
    expect(starter.pending.map((p) => p.id)).toEqual(['a-0', 'a-1'])
    starter.pending[1]!.finish()
    const s2 = await b
    expect(s2.node.id).toBe('a-1')
    s1.release() // the dead node's late release changes nothing
    expect(app.status().nodes.map((n) => n.id)).toEqual(['a-1'])
  })

  it('recycles a node after its idle timeout (scale to zero)', async () => {
    const { app, starter } = appNodes({ idleTimeoutMs: 20 })
    const a = app.acquire()
    await tick()
    starter.pending[0]!.finish()
    ;(await a).release()
    expect(app.status().nodes.map((n) => n.state)).toEqual(['ready'])
    await new Promise((r) => setTimeout(r, 80))
    expect(app.status().nodes).toEqual([])
    expect(starter.nodes.get('a-0')!.destroyed).toBe(true)
  })

  it('lets requests in flight finish when the app closes, then recycles', async () => {
    const { app, starter } = appNodes({})
    const a = app.acquire()
    await tick()
    starter.pending[0]!.finish()
    const slot = await a
    const closed = app.close()
    expect(app.status().nodes.map((n) => n.state)).toEqual(['draining'])
    await expect(app.acquire()).rejects.toMatchObject({ code: 'APP_GONE' })
    slot.release()
    await closed
    expect(starter.nodes.get('a-0')!.destroyed).toBe(true)
  })
})
