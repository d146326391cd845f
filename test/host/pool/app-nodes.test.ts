import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, type AppLimits } from '../../../host/apps/app-spec.ts'
import { silentHostLogger } from '../../../host/log/host-logger.ts'
import { AppNodes, type StartBackoff, type StartedNode } from '../../../host/pool/app-nodes.ts'
import type { WorkerClient } from '../../../host/worker/worker-client.ts'

/** A node starter whose starts the test completes by hand; its nodes "die" on demand. */
function fakeStarter() {
  const pending: { id: string; fn?: string; finish: () => void; fail: (e: Error) => void }[] = []
  const nodes = new Map<string, { die: (m: string) => void; destroyed: boolean }>()
  const start = (id: string, signal: AbortSignal, fn?: string) =>
    new Promise<StartedNode>((resolve, reject) => {
      let die!: (m: string) => void
      const exited = new Promise<{ message: string }>((r) => (die = (message) => r({ message })))
      const record = { die, destroyed: false }
      nodes.set(id, record)
      signal.addEventListener('abort', () => reject(signal.reason))
      pending.push({
        id,
        fn,
        fail: reject,
        finish: () =>
          resolve({
            id,
            client: {} as WorkerClient,
            functions: [],
            allFunctions: [],
            routePrefix: 'api',
            customHeaders: {},
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

function appNodes(limits: Partial<AppLimits>, starter = fakeStarter(), backoff?: StartBackoff) {
  const app = new AppNodes('a', {
    limits: () => ({ ...DEFAULT_LIMITS, ...limits }),
    start: starter.start,
    logger: silentHostLogger,
    backoff,
  })
  return { app, starter }
}

const tick = () => new Promise((r) => setTimeout(r, 0))

describe('AppNodes', () => {
  it("names the function whose request made a cold start to the starter (its profile is that workload's)", async () => {
    const { app, starter } = appNodes({ maxNodes: 2, concurrency: 1, maxQueue: 10 })
    const first = app.acquire(undefined, 'i-1', 'hello')
    const second = app.acquire(undefined, 'i-2')
    await tick()
    expect(starter.pending.map((p) => [p.id, p.fn])).toEqual([
      ['a-0', 'hello'],
      ['a-1', undefined],
    ])
    for (const p of starter.pending) p.finish()
    ;(await first).release()
    ;(await second).release()
    await app.close()
  })

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
    expect(
      app
        .status()
        .nodes.map((n) => n.served)
        .reduce((a, b) => a + b),
    ).toBe(10)
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

  it('does not start again per request after a failed start: refuses at once until the backoff has passed, doubling it', async () => {
    // A backoff far longer than the test: what counts is that nothing is started, not when.
    const { app, starter } = appNodes({ maxNodes: 1 }, fakeStarter(), {
      baseMs: 60_000,
      maxMs: 120_000,
    })
    const first = app.acquire()
    await tick()
    starter.pending[0]!.fail(new Error('the app failed to load: boom'))
    await expect(first).rejects.toMatchObject({ code: 'APP_START_FAILED', retryAfterMs: 60_000 })
    for (let i = 0; i < 20; i++) {
      await expect(app.acquire()).rejects.toMatchObject({
        code: 'APP_START_BACKOFF',
        message: expect.stringMatching(/boom/),
        retryAfterMs: expect.any(Number),
      })
    }
    expect(starter.pending).toHaveLength(1)
    expect(app.status().startFailures).toMatchObject({
      count: 1,
      lastError: 'the app failed to load: boom',
    })
  })

  it('caps the backoff and forgets it once a start succeeds', async () => {
    const { app, starter } = appNodes({ maxNodes: 1 }, fakeStarter(), { baseMs: 0, maxMs: 0 })
    for (let i = 0; i < 3; i++) {
      const a = app.acquire()
      await tick()
      starter.pending[i]!.fail(new Error('boom'))
      await expect(a).rejects.toMatchObject({ code: 'APP_START_FAILED', retryAfterMs: 0 })
    }
    const ok = app.acquire()
    await tick()
    starter.pending[3]!.finish()
    ;(await ok).release()
    expect(app.status().startFailures).toBeUndefined()
  })

  it('starts one node with nobody waiting (a health gate), which then serves', async () => {
    const { app, starter } = appNodes({ maxNodes: 1 })
    const gate = app.startOne()
    await tick()
    starter.pending[0]!.finish()
    expect((await gate).id).toBe('a-0')
    const slot = await app.acquire()
    expect(slot.node.id).toBe('a-0')
    // Its first request did not wait for a start: no cold-start breakdown (but record/replay stops).
    expect([slot.first, slot.cold]).toEqual([true, false])
    expect(starter.pending).toHaveLength(1)
  })

  it('prestarts one node for the trigger sync only when none is live, taking no slot: its first request is still its first', async () => {
    const { app, starter } = appNodes({ maxNodes: 2 })
    const synced = app.prestart()
    await tick()
    expect(await Promise.race([app.prestart(), tick().then(() => 'waited')])).toBeUndefined() // one is starting
    const request = app.acquire() // waits for the prestarted node rather than starting one
    await tick()
    expect(starter.pending.map((p) => p.id)).toEqual(['a-0'])
    starter.pending[0]!.finish()
    expect((await synced)?.id).toBe('a-0')
    const slot = await request
    expect([slot.node.id, slot.first, slot.cold]).toEqual(['a-0', true, false])
    expect(await app.prestart()).toBeUndefined() // one is ready
    slot.release()
    await app.close()
  })

  it('drains a node still starting once it is ready, and waits for that (scale to zero now)', async () => {
    const { app, starter } = appNodes({ maxNodes: 2, concurrency: 1, maxQueue: 10 })
    void app.prestart() // the trigger sync's node for a new app, still starting
    await tick()
    let drained = false
    const draining = app.drainAll().then(() => (drained = true))
    await tick()
    expect(drained).toBe(false)
    starter.pending[0]!.finish()
    await draining
    expect(app.status().nodes).toEqual([])
    expect(starter.nodes.get('a-0')!.destroyed).toBe(true)
    // The next request starts a node of its own: its first request is a cold start.
    const slot = app.acquire()
    await tick()
    starter.pending[1]!.finish()
    expect((await slot).cold).toBe(true)
    ;(await slot).release()
    await app.close()
  })

  it('prestarts nothing while starts back off', async () => {
    const { app, starter } = appNodes({ maxNodes: 1 }, fakeStarter(), {
      baseMs: 60_000,
      maxMs: 60_000,
    })
    const failed = app.prestart()
    await tick()
    starter.pending[0]!.fail(new Error('boom'))
    await expect(failed).rejects.toMatchObject({ code: 'APP_START_FAILED' })
    expect(await app.prestart()).toBeUndefined()
    expect(starter.pending).toHaveLength(1)
  })

  it('hands what waits to the nodes of the next revision when closed for it, failing none', async () => {
    const old = appNodes({ maxNodes: 1, concurrency: 1 })
    const a = old.app.acquire()
    await tick()
    old.starter.pending[0]!.finish()
    const busy = await a
    const waiting = [old.app.acquire(), old.app.acquire()]
    const next = appNodes({ maxNodes: 1, concurrency: 2 })
    const gate = next.app.startOne()
    await tick()
    next.starter.pending[0]!.finish()
    await gate
    await Promise.all([old.app.close(next.app), (async () => busy.release())()])
    const slots = await Promise.all(waiting)
    expect(slots.map((s) => s.node.id)).toEqual(['a-0', 'a-0'])
    // Both went to the next revision's node, none to the old one (which had one slot, busy).
    expect(slots.every((s) => s.node !== busy.node)).toBe(true)
    expect(old.starter.nodes.get('a-0')!.destroyed).toBe(true) // the old node drained and stopped
  })
})
