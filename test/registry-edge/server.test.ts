import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../registry-edge/auth/password-hash.ts'
import type { EdgeExtension } from '../../registry-edge/edge-extension.ts'
import { jsonLogger } from '../../registry-edge/observability/edge-logger.ts'
import { pushBlob, pushImage, startTestEdge } from '../support/edge-client.ts'

function capture() {
  const lines: Record<string, unknown>[] = []
  return { lines, logger: jsonLogger({ region: 'eu-test', write: (l) => void lines.push(JSON.parse(l)) }) }
}

const settle = () => new Promise((r) => setTimeout(r, 50))

describe('observability', () => {
  it('logs one JSON line per request with status, bytes, duration and region', async () => {
    const { lines, logger } = capture()
    const { url } = await startTestEdge({ logger, region: 'eu-test' })
    const digest = await pushBlob(url, 'apps/log', randomBytes(1234))
    lines.length = 0
    await (await fetch(`${url}/v2/apps/log/blobs/${digest}`, { headers: { range: 'bytes=0-99' } })).arrayBuffer()
    await (await fetch(`${url}/v2/apps/log/blobs/sha256:${'0'.repeat(64)}`)).arrayBuffer()
    await settle()
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'request', method: 'GET', path: `/v2/apps/log/blobs/${digest}`, status: 206, bytes: 100, region: 'eu-test' })
    expect(typeof lines[0]!.duration_ms).toBe('number')
    expect(lines[1]).toMatchObject({ status: 404, region: 'eu-test' })
  })

  it('exposes Prometheus metrics of its own registry, labelled with the region', async () => {
    const a = await startTestEdge({ region: 'region-a' })
    const b = await startTestEdge({ region: 'region-b' })
    const digest = await pushBlob(a.url, 'apps/m', randomBytes(5000))
    await (await fetch(`${a.url}/v2/apps/m/blobs/${digest}`)).arrayBuffer()
    await settle()
    const text = await (await fetch(`${a.url}/metrics`)).text()
    expect(text).toMatch(/thaw_edge_requests_total\{method="GET",route="blobs",status="200",region="region-a"\} 1/)
    expect(text).toMatch(/thaw_edge_bytes_served_total\{kind="blobs",region="region-a"\} 5000/)
    const count = text.split('\n').find((l) => l.startsWith('thaw_edge_request_duration_seconds_count') && l.includes('route="blobs"'))
    expect(count).toContain('region="region-a"')
    expect(count).toMatch(/ 1$/)
    expect(text).toContain('thaw_edge_cache_hits_total')
    const other = await (await fetch(`${b.url}/metrics`)).text()
    expect(other).not.toMatch(/route="blobs"/) // edges in one process do not share metrics
    expect(await (await fetch(`${a.url}/healthz`)).json()).toEqual({ status: 'ok', region: 'region-a' })
  })
})

describe('lifecycle', () => {
  it('finishes an in-flight upload on close, then refuses new connections', async () => {
    const edge = await startTestEdge()
    const data = randomBytes(200_000)
    const post = await fetch(`${edge.url}/v2/apps/slow/blobs/uploads/`, { method: 'POST' })
    const location = new URL(post.headers.get('location')!, edge.url)
    // A PATCH whose body arrives slowly: half now, half after close() has begun.
    const done = new Promise<number>((resolve, reject) => {
      const req = request(location, { method: 'PATCH', headers: { 'content-length': String(data.length) } }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode!))
      })
      req.on('error', reject)
      req.write(data.subarray(0, 100_000))
      setTimeout(() => req.end(data.subarray(100_000)), 300)
    })
    await settle()
    const closing = edge.close()
    expect(await done).toBe(202)
    await closing
    await expect(fetch(`${edge.url}/v2/`)).rejects.toThrow()
    await edge.close() // idempotent
  })
})

describe('extension hooks', () => {
  it('routes /v2/<name>/_thaw/<ext>/... to the extension with the name and subpath', async () => {
    const seen: string[] = []
    const status: EdgeExtension = {
      name: 'status',
      handle: ({ repository, subpath, request }) => {
        seen.push(`${request.method} ${repository} ${subpath}`)
        return new Response(JSON.stringify({ repository, subpath }), { headers: { 'content-type': 'application/json' } })
      },
    }
    const { url } = await startTestEdge({ extensions: [status] })
    expect(await (await fetch(`${url}/v2/apps/deep/name/_thaw/status/v1/x`)).json()).toEqual({ repository: 'apps/deep/name', subpath: '/v1/x' })
    expect((await fetch(`${url}/v2/apps/x/_thaw/status`, { method: 'POST' })).status).toBe(200)
    expect(seen).toEqual(['GET apps/deep/name /v1/x', 'POST apps/x '])
    expect((await fetch(`${url}/v2/apps/x/_thaw/nope`)).status).toBe(404)
    expect((await fetch(`${url}/v2/Bad/_thaw/status`)).status).toBe(400)
  })

  it('applies auth to extensions: pull for reads, push for writes by default', async () => {
    const ext: EdgeExtension = { name: 'bundle', handle: () => new Response('ok') }
    const { url } = await startTestEdge({
      extensions: [ext],
      auth: { users: { bob: { password: await hashPassword('pw') } }, access: [{ repository: 'apps/*', users: ['bob'], actions: ['pull'] }] },
    })
    const bob = { authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}` }
    expect((await fetch(`${url}/v2/apps/x/_thaw/bundle/v1`)).status).toBe(401)
    expect((await fetch(`${url}/v2/apps/x/_thaw/bundle/v1`, { headers: bob })).status).toBe(200)
    expect((await fetch(`${url}/v2/apps/x/_thaw/bundle/v1`, { method: 'PUT', headers: bob })).status).toBe(403)
  })

  it('tells every manifest listener, and a failing listener neither fails the push nor the others', async () => {
    const { lines, logger } = capture()
    const got: string[] = []
    const edge = await startTestEdge({ logger, onManifestPut: () => Promise.reject(new Error('converter down')) })
    const unsubscribe = edge.edge.onManifestPut((e) => void got.push(`${e.repository}:${e.tag}`))
    await pushImage(edge.url, 'apps/ev', 'v1', [randomBytes(10)])
    unsubscribe()
    await pushImage(edge.url, 'apps/ev', 'v2', [randomBytes(10)])
    await settle()
    expect(got).toEqual(['apps/ev:v1'])
    expect(lines.filter((l) => l.msg === 'manifest listener failed')).toHaveLength(2)
  })
})
