import { createHash, randomBytes, type Hash } from 'node:crypto'
import { Agent, request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HostLogger } from '../../host/log/host-logger.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'
import { createUnpackedImageMounts } from '../support/unpacked-image-mounts.ts'

/**
 * An unmodified @azure/functions v4 app (buffered mode, the default) whose functions ignore,
 * stream or read whole their request body; `who` names the worker process, so a test sees
 * whether its node survived.
 */
const APP = `
const { app } = require('@azure/functions')
const { createHash, randomUUID } = require('node:crypto')
const boot = randomUUID()
app.http('ignore', { methods: ['GET', 'POST'], authLevel: 'anonymous', handler: async () => ({ body: 'ignored' }) })
app.http('hash', { methods: ['POST'], authLevel: 'anonymous', handler: async (req) => {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of req.body) { hash.update(chunk); size += chunk.length }
  return { jsonBody: { size, sha256: hash.digest('hex') } }
} })
app.http('length', { methods: ['POST'], authLevel: 'anonymous', handler: async (req) => ({ body: String((await req.text()).length) }) })
app.http('slow', { methods: ['GET'], authLevel: 'anonymous', handler: async (req) => {
  await new Promise((r) => setTimeout(r, Number(req.query.get('ms') ?? 1000)))
  return { body: 'slow done' }
} })
app.http('who', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ jsonBody: { boot } }) })
app.http('hog', { methods: ['GET'], authLevel: 'anonymous', handler: async () => {
  const kept = []
  for (;;) kept.push(Buffer.alloc(1 << 20, 1))
} })
`

const MiB = 1024 * 1024
const title = sandboxUnavailable
  ? `host request bodies (skipped: ${sandboxUnavailable})`
  : 'host request bodies on real nodes'

describe.skipIf(sandboxUnavailable)(title, { timeout: 240_000 }, () => {
  let registry: TestRegistry
  let host: RunningHost
  let image: string
  const logs: Record<string, unknown>[] = []
  const logger: HostLogger = {
    log: (level, msg, fields) => void logs.push({ level, msg, ...fields }),
  }

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${host.url}/admin${path}`, {
      ...init,
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
    })
  const createApp = async (body: Record<string, unknown>) => {
    const res = await admin('/apps', { method: 'POST', body: JSON.stringify({ image, ...body }) })
    expect(res.status, await res.clone().text()).toBe(201)
  }
  const nodesOf = async (app: string) => {
    const body = (await (await admin(`/apps/${app}`)).json()) as {
      nodes: { nodes: { id: string; inflight: number; served: number }[] } | null
    }
    return body.nodes?.nodes ?? []
  }
  /** The app's node ids and its worker's boot id: equal before and after means the node lived. */
  const nodeOf = async (app: string) => {
    const who = (await (await fetch(`${host.url}/${app}/api/who`)).json()) as { boot: string }
    return { ids: (await nodesOf(app)).map((n) => n.id), boot: who.boot }
  }
  const slowRequests = (app: string, n: number, ms = 1500) =>
    Array.from({ length: n }, () =>
      fetch(`${host.url}/${app}/api/slow?ms=${ms}`).then(async (r) => [r.status, await r.text()]),
    )

  beforeAll(async () => {
    registry = await startDistribution()
    image = await pushAppImage({
      registry: registry.address,
      repository: 'apps/bodies',
      tag: 'v1',
      base: await nodeBase(),
      files: {
        'host.json': '{ "version": "2.0" }',
        'package.json': '{ "name": "bodies", "main": "index.js" }',
        'index.js': APP,
      },
    })
    host = await startHost({
      stateDir: await tmpDir('thaw-host-'),
      port: 0,
      warm: 1,
      mounts: createUnpackedImageMounts(await tmpDir('thaw-unpacked-')),
      logger,
    })
  }, 600_000)
  afterAll(async () => {
    await host?.close()
    await registry?.stop()
  })

  it('answers 413 to a 90 MB POST by its Content-Length without starting a node', async () => {
    await createApp({ name: 'cold' })
    const big = await upload(`${host.url}/cold/api/ignore`, { size: 90 * MiB, stopOnAnswer: true })
    expect(big.status).toBe(413)
    expect(big.sent).toBeLessThan(90 * MiB)
    // A client that asks first (Expect: 100-continue, as curl does) sends none of it.
    const asked = await upload(`${host.url}/cold/api/ignore`, {
      size: 90 * MiB,
      expectContinue: true,
      stopOnAnswer: true,
    })
    expect([asked.status, asked.sent]).toEqual([413, 0])
    expect(await nodesOf('cold')).toEqual([]) // no cold start for either
  })

  it('answers 413 to a 90 MB POST to a function that ignores it, while 8 requests in flight on its node all succeed', async () => {
    await createApp({ name: 'bodies', limits: { maxNodes: 1 } })
    const before = await nodeOf('bodies')
    const served = (await nodesOf('bodies'))[0]!.served
    const normal = slowRequests('bodies', 8)
    const big = await upload(`${host.url}/bodies/api/ignore`, {
      size: 90 * MiB,
      stopOnAnswer: true,
    })
    expect(big.status).toBe(413)
    expect(await Promise.all(normal)).toEqual(Array(8).fill([200, 'slow done']))
    // The 413 never reached the node: it served the 8 and nothing else.
    expect((await nodesOf('bodies'))[0]!.served).toBe(served + 8)
    expect(await nodeOf('bodies')).toEqual(before)
  })

  it('cuts a chunked 90 MB body at the limit (413 or the connection closed) and the node lives on', async () => {
    await createApp({ name: 'chunked', limits: { maxNodes: 1 } })
    const before = await nodeOf('chunked')
    const normal = slowRequests('chunked', 8)
    // A client that keeps pushing whatever the answer: only closing the connection stops it.
    const big = await upload(`${host.url}/chunked/api/ignore`, { size: 90 * MiB, chunked: true })
    expect(big.status === 413 || !big.finished, JSON.stringify(big)).toBe(true)
    expect(big.sent).toBeLessThan(90 * MiB)
    // A function that reads the body answers only after it: the limit is the answer.
    const read = await upload(`${host.url}/chunked/api/hash`, {
      size: 90 * MiB,
      chunked: true,
      stopOnAnswer: true,
    })
    expect([read.status, read.sent < 90 * MiB]).toEqual([413, true])
    expect(await Promise.all(normal)).toEqual(Array(8).fill([200, 'slow done']))
    expect(await nodeOf('chunked')).toEqual(before)
  })

  it('streams a body just under a raised FUNCTIONS_REQUEST_BODY_SIZE_LIMIT to a function that hashes it', async () => {
    const limit = 160 * MiB // more than half the node's 256 MiB: buffered, it could not fit
    await createApp({
      name: 'big',
      settings: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(limit) },
      limits: { maxNodes: 1 },
    })
    const before = await nodeOf('big')
    const hash = createHash('sha256')
    const res = await upload(`${host.url}/big/api/hash`, { size: limit - 1, hash })
    expect([res.status, JSON.parse(res.text)]).toEqual([
      200,
      { size: limit - 1, sha256: hash.digest('hex') },
    ])
    const over = await upload(`${host.url}/big/api/hash`, { size: limit + 1, stopOnAnswer: true })
    expect(over.status).toBe(413)
    expect(await nodeOf('big')).toEqual(before)
  })

  it('answers 408 to bodies that trickle in before they take a node slot', async () => {
    await createApp({
      name: 'trickle',
      settings: { FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '2' },
      limits: { maxNodes: 1, concurrency: 2 },
    })
    const before = await nodeOf('trickle')
    const served = (await nodesOf('trickle'))[0]!.served
    // One byte every 250 ms of a declared 1000 to a function that reads its body: the host reads
    // a body's first 16 KiB before it takes a slot, so these never get one.
    const slow = [0, 1, 2].map(() =>
      upload(`${host.url}/trickle/api/length`, {
        size: 1000,
        chunk: 1,
        intervalMs: 250,
        stopOnAnswer: true,
        giveUpMs: 90_000,
      }),
    )
    expect((await Promise.all(slow)).map((s) => s.status)).toEqual([408, 408, 408])
    expect((await nodesOf('trickle'))[0]!.served).toBe(served) // none reached the node
    expect(await nodeOf('trickle')).toEqual(before)
  })

  it('frees the slots of bodies that start at once and then trickle, at their deadline: a GET waiting for one succeeds', async () => {
    await createApp({
      name: 'burst',
      // 2 s, then 100 000 bytes/s: the first 16 KiB buy 0.16 s more.
      settings: {
        FUNCTIONS_REQUEST_BODY_TIMEOUT_SECONDS: '2',
        FUNCTIONS_REQUEST_BODY_MIN_RATE: '100000',
      },
      // Two slots in all, and a request timeout that an unbounded slow body would run into.
      limits: { maxNodes: 1, concurrency: 2, requestTimeoutMs: 60_000 },
    })
    const before = await nodeOf('burst')
    // 16 KiB at once (a slot is taken for each), then one byte every 250 ms of 100 000.
    const slow = [0, 1].map(() =>
      upload(`${host.url}/burst/api/length`, {
        size: 100_000,
        burst: 16 * 1024,
        chunk: 1,
        intervalMs: 250,
        stopOnAnswer: true,
        giveUpMs: 90_000,
      }),
    )
    await waitFor(async () => (await nodesOf('burst'))[0]?.inflight === 2)
    const get = await fetch(`${host.url}/burst/api/who`)
    expect([get.status, await get.json()]).toEqual([200, { boot: before.boot }])
    expect((await Promise.all(slow)).map((s) => s.status)).toEqual([408, 408])
    expect(await nodeOf('burst')).toEqual(before)
  })

  it('logs which requests died with an OOM-killed node and why, and answers each 502 with its invocation id', async () => {
    await createApp({ name: 'hog', limits: { maxNodes: 1 } })
    await nodeOf('hog')
    const inflight = [0, 1, 2].map(() => fetch(`${host.url}/hog/api/slow?ms=60000`))
    await waitFor(async () => (await nodesOf('hog'))[0]?.inflight === 3)
    const died = await Promise.all([...inflight, fetch(`${host.url}/hog/api/hog`)])
    expect(died.map((r) => r.status)).toEqual([502, 502, 502, 502])
    const ids = died.map((r) => r.headers.get('x-ms-invocation-id')).sort()
    expect(ids.every((id) => /^[0-9a-f-]{36}$/.test(id ?? ''))).toBe(true)
    expect(await died[3]!.text()).toMatch(/OOM killer/)
    const exit = logs.find(
      (l) => l.app === 'hog' && l.reason === 'oom' && Array.isArray(l.invocations),
    )
    expect(exit?.msg).toMatch(/OOM killer.*4 requests in flight fail/)
    expect([...(exit!.invocations as string[])].sort()).toEqual(ids)
    const perRequest = logs.filter(
      (l) => l.app === 'hog' && /died with its node/.test(String(l.msg)),
    )
    expect(perRequest.map((l) => l.invocationId).sort()).toEqual(ids)
    // Only those: the next request gets a new node.
    expect((await fetch(`${host.url}/hog/api/who`)).status).toBe(200)
  })
})

interface Upload {
  status?: number
  text: string
  /** Bytes handed to the socket. */
  sent: number
  /** The whole body was sent. */
  finished: boolean
  error?: string
}

/**
 * POSTs `size` bytes with node:http on its own connection, by Content-Length or chunked, fast or
 * `chunk` bytes every `intervalMs`. `stopOnAnswer` stops sending once an answer came (a polite
 * client); else it pushes until done or the connection breaks. `hash` sees every byte sent.
 */
function upload(
  url: string,
  o: {
    size: number
    chunked?: boolean
    chunk?: number
    intervalMs?: number
    stopOnAnswer?: boolean
    hash?: Hash
    giveUpMs?: number
    /** Send `Expect: 100-continue` and the body only after a 100. */
    expectContinue?: boolean
    /** Bytes sent at once before the first `chunk` (with `intervalMs`). */
    burst?: number
  },
): Promise<Upload> {
  return new Promise((resolve) => {
    const out: Upload = { text: '', sent: 0, finished: false }
    const chunkSize = o.chunk ?? MiB
    const zeros = Buffer.alloc(chunkSize)
    const headers: Record<string, string> = o.chunked
      ? { 'transfer-encoding': 'chunked' }
      : { 'content-length': String(o.size) }
    if (o.expectContinue) headers.expect = '100-continue'
    // Keep-alive, as browsers and fetch() send: the host may not close the connection after its
    // answer just because the client asked it to.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const req = request(url, { method: 'POST', headers, agent })
    let answered = false
    let timer: NodeJS.Timeout | undefined
    const giveUp = setTimeout(() => req.destroy(), o.giveUpMs ?? 120_000)
    const next = () => {
      const n = Math.min(chunkSize, o.size - out.sent)
      const data = o.hash ? randomBytes(n) : zeros.subarray(0, n)
      o.hash?.update(data)
      out.sent += n
      if (out.sent >= o.size) {
        req.end(data, () => (out.finished = true))
        return true
      }
      return req.write(data)
    }
    const stopped = () => req.destroyed || req.writableEnded || (o.stopOnAnswer && answered)
    const start = () => {
      if (o.burst) {
        out.sent += o.burst
        req.write(Buffer.alloc(o.burst))
      }
      if (o.intervalMs) {
        timer = setInterval(() => (stopped() ? clearInterval(timer) : next()), o.intervalMs)
      } else {
        const pump = () => {
          while (!stopped()) if (!next()) return void req.once('drain', pump)
        }
        pump()
      }
    }
    if (o.expectContinue) {
      req.flushHeaders()
      req.once('continue', start)
    } else start()
    req.on('response', (res) => {
      answered = true
      out.status = res.statusCode
      res.on('data', (c: Buffer) => (out.text += c.toString()))
      res.on('end', () => {
        if (o.stopOnAnswer && !out.finished) req.destroy()
      })
      res.on('error', () => {})
    })
    req.on('error', (err) => (out.error = (err as NodeJS.ErrnoException).code ?? err.message))
    req.on('close', () => {
      clearInterval(timer)
      clearTimeout(giveUp)
      agent.destroy()
      resolve(out)
    })
  })
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}
