import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildTestImage, readLayoutBlob, readLayoutImage, type TestImage } from '../support/edge-image.ts'
import { expectStatus, pushBlob, pushImage, pushManifest, sha256 } from '../support/edge-client.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { startDistribution, type TestRegistry } from '../support/registry.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MiB = 1024 * 1024
const TAG_TTL_SECONDS = 4

let upstream: TestRegistry
let image: TestImage

interface ProxyEdge {
  url: string
  address: string
  store: string
  process: TestProcess
}

/** `thaw edge --upstream` as a real process, its proxy settings from a config file. */
async function startProxy(proxy: Record<string, unknown> = {}, store?: string): Promise<ProxyEdge> {
  const dir = store ?? (await tmpDir('thaw-edge-proxy-'))
  const config = join(await tmpDir('thaw-edge-proxy-config-'), 'edge.json')
  await writeFile(config, JSON.stringify({ region: 'test-west', proxy: { tagTtlSeconds: TAG_TTL_SECONDS, ...proxy } }))
  const port = await freePort()
  const args = ['edge', '--config', config, '--port', String(port), '--store', dir, '--upstream', upstream.url]
  const process = startProcess(THAW, args)
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://127.0.0.1:${port}`, address: `127.0.0.1:${port}`, store: dir, process }
}

/** Requests distribution has served matching `pattern` ("METHOD /path" strings). */
function upstreamCount(pattern: RegExp): number {
  return upstream.requests().filter((r) => pattern.test(r)).length
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let total = 0
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').pop())
  return total
}

async function expectLayoutsIdentical(outLayout: string): Promise<void> {
  const original = await readLayoutImage(image.layout, image.tag)
  const pulled = await readLayoutImage(outLayout, image.tag)
  expect(pulled.digest).toBe(original.digest)
  expect(pulled.bytes.equals(original.bytes)).toBe(true)
  expect(pulled.blobs).toEqual(original.blobs)
  for (const digest of original.blobs) {
    const [a, b] = await Promise.all([readLayoutBlob(image.layout, digest), readLayoutBlob(outLayout, digest)])
    expect(b.equals(a), digest).toBe(true)
  }
}

beforeAll(async () => {
  upstream = await startDistribution()
  image = await buildTestImage({ layers: 3, layerBytes: 1536 * 1024 })
})

describe('proxy mode in front of distribution', () => {
  let edge: ProxyEdge
  beforeAll(async () => {
    edge = await startProxy()
  })

  it('lets skopeo pull an image from the upstream through the edge, byte-identical, fetching each blob once', async () => {
    await run('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, `docker://${upstream.address}/apps/pulled:${image.tag}`])
    const blobGets = /^GET \/v2\/apps\/pulled\/blobs\/sha256:/
    expect(upstreamCount(blobGets)).toBe(0)
    for (const round of [1, 2]) {
      const out = join(await tmpDir('thaw-proxy-pull-'), 'layout')
      await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${edge.address}/apps/pulled:${image.tag}`, `oci:${out}:${image.tag}`])
      await expectLayoutsIdentical(out)
      if (round === 1) var afterFirst = upstreamCount(blobGets)
    }
    // The second pull came from the cache: no blob was fetched upstream again.
    expect(upstreamCount(blobGets)).toBe(afterFirst!)
    expect(await metric(edge.url, 'thaw_edge_cache_hits_total{')).toBeGreaterThan(0)
    expect(edge.process.output()).toMatch(/"region":"test-west"/)
    expect(await (await fetch(`${edge.url}/metrics`)).text()).toMatch(/thaw_edge_upstream_bytes_total\{region="test-west"\} [1-9]/)
  })

  it('passes a skopeo push through the edge to the upstream, byte-identical there', async () => {
    await run('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, `docker://${edge.address}/apps/pushed:${image.tag}`])
    expect(upstreamCount(/^PUT \/v2\/apps\/pushed\/manifests\//)).toBe(1)
    const out = join(await tmpDir('thaw-proxy-pushed-'), 'layout')
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${upstream.address}/apps/pushed:${image.tag}`, `oci:${out}:${image.tag}`])
    await expectLayoutsIdentical(out)
  })

  it('sends N concurrent range readers of one chunk to the upstream as one request (counted at the upstream)', async () => {
    const quiet = await startProxy({ fillConcurrency: 0 }) // no background fill: every upstream GET is a reader's
    const blob = randomBytes(5 * MiB)
    const digest = await pushBlob(upstream.url, 'apps/one-chunk', blob, 'post-put')
    const blobGets = new RegExp(`^GET /v2/apps/one-chunk/blobs/${digest}$`)
    expect(upstreamCount(blobGets)).toBe(0)
    const start = 3 * MiB + 4096
    const reads = Array.from({ length: 16 }, async () => {
      const res = await fetch(`${quiet.url}/v2/apps/one-chunk/blobs/${digest}`, { headers: { range: `bytes=${start}-${start + 9999}` } })
      expect(res.status).toBe(206)
      return Buffer.from(await res.arrayBuffer())
    })
    for (const got of await Promise.all(reads)) expect(got.equals(blob.subarray(start, start + 10000))).toBe(true)
    expect(upstreamCount(blobGets)).toBe(1)
    await quiet.process.stop()
  })

  it('contacts the upstream once for concurrent range readers, even while filling the rest in the background', async () => {
    const blob = randomBytes(6 * MiB + 12345)
    const digest = await pushBlob(upstream.url, 'apps/ranges', blob, 'post-put')
    const before = await metric(edge.url, 'thaw_edge_upstream_bytes_total{')
    const start = 2 * MiB + 100
    const end = start + 64 * 1024
    const reads = Array.from({ length: 12 }, async () => {
      const res = await fetch(`${edge.url}/v2/apps/ranges/blobs/${digest}`, { headers: { range: `bytes=${start}-${end}` } })
      expect(res.status).toBe(206)
      return Buffer.from(await res.arrayBuffer())
    })
    for (const got of await Promise.all(reads)) expect(got.equals(blob.subarray(start, end + 1))).toBe(true)
    const whole = await fetch(`${edge.url}/v2/apps/ranges/blobs/${digest}`)
    expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(digest)
    // Every byte of the blob came from the upstream exactly once: no chunk was fetched twice.
    await expect.poll(() => metric(edge.url, 'thaw_edge_upstream_bytes_total{'), { timeout: 20_000 }).toBe(before + blob.length)
  })

  it('resolves a tag upstream again only after its TTL, and a digest never again', async () => {
    const a = await pushImage(upstream.url, 'apps/moving', 'v1', [randomBytes(1000)])
    const tagGets = () => upstreamCount(/^GET \/v2\/apps\/moving\/manifests\/v1$/)
    const get = async (ref: string) => {
      const res = await fetch(`${edge.url}/v2/apps/moving/manifests/${ref}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      await expectStatus(res, 200)
      return res.headers.get('docker-content-digest')
    }
    expect(await get('v1')).toBe(a.digest)
    const b = await pushImage(upstream.url, 'apps/moving', 'v1', [randomBytes(1000)])
    const gets = tagGets()
    // Within the TTL the edge answers from its cache, without asking the upstream.
    expect(await get('v1')).toBe(a.digest)
    expect(tagGets()).toBe(gets)
    // A digest is cached for good: the tag fetch above already cached a by digest.
    expect(await get(a.digest)).toBe(a.digest)
    expect(upstreamCount(new RegExp(`^GET /v2/apps/moving/manifests/${a.digest}$`))).toBe(0)
    // Once the TTL is over, the tag is resolved upstream again and moves.
    await expect.poll(() => get('v1'), { timeout: (TAG_TTL_SECONDS + 10) * 1000, interval: 500 }).toBe(b.digest)
    expect(tagGets()).toBeGreaterThan(gets)
  })

  it('answers a tag DELETE the upstream refuses (its 400 DIGEST_INVALID) with 405 UNSUPPORTED, the tag kept', async () => {
    const pushed = await pushImage(upstream.url, 'apps/undeletable', 'v1', [randomBytes(100)])
    const res = await fetch(`${edge.url}/v2/apps/undeletable/manifests/v1`, { method: 'DELETE' })
    expect(upstreamCount(/^DELETE \/v2\/apps\/undeletable\/manifests\/v1$/)).toBe(1)
    expect(res.status).toBe(405)
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNSUPPORTED')
    const head = await fetch(`${edge.url}/v2/apps/undeletable/manifests/v1`, { method: 'HEAD' })
    expect(head.headers.get('docker-content-digest')).toBe(pushed.digest)
    // A pull by a reference that cannot be a tag is a manifest that is not there, in proxy mode too.
    const invalid = await fetch(`${edge.url}/v2/apps/undeletable/manifests/.INVALID`, { method: 'HEAD' })
    expect(invalid.status).toBe(404)
  })

  it('keeps referrers in the upstream fallback tag sha256-<hex> and lists them from it', async () => {
    const subject = await pushImage(upstream.url, 'apps/signed', 'v1', [randomBytes(2000)])
    const empty = Buffer.from('{}')
    const emptyDigest = await pushBlob(edge.url, 'apps/signed', empty, 'monolithic')
    const artifact = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.thaw.test.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: empty.length },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: empty.length }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: subject.bytes.length },
    }
    const bytes = JSON.stringify(artifact)
    const put = await pushManifest(edge.url, 'apps/signed', sha256(bytes), artifact)
    await expectStatus(put, 201)
    expect(put.headers.get('oci-subject')).toBe(subject.digest)
    // Distribution 2.8 has no referrers API: the edge wrote the fallback tag there.
    const tag = `sha256-${subject.digest.slice(7)}`
    const index = await fetch(`${upstream.url}/v2/apps/signed/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
    await expectStatus(index, 200)
    const listed = ((await index.json()) as { manifests: { digest: string }[] }).manifests
    expect(listed.map((d) => d.digest)).toEqual([sha256(bytes)])
    // And the edge's referrers API reads it back, with the artifactType filter applied.
    for (const [query, expected] of [['', 1], ['?artifactType=application/vnd.thaw.test.v1', 1], ['?artifactType=other/type', 0]] as const) {
      const res = await fetch(`${edge.url}/v2/apps/signed/referrers/${subject.digest}${query}`)
      await expectStatus(res, 200)
      const body = (await res.json()) as { manifests: { digest: string; artifactType?: string }[] }
      expect(body.manifests).toHaveLength(expected)
      if (expected) expect(body.manifests[0]).toMatchObject({ digest: sha256(bytes), artifactType: 'application/vnd.thaw.test.v1' })
    }
  })
})

describe('proxy cache after SIGKILL', () => {
  it('restarts with a consistent cache after being killed mid-fill, and serves the right bytes', async () => {
    const blob = randomBytes(40 * MiB + 777)
    const digest = await pushBlob(upstream.url, 'apps/killed', blob, 'chunked', 8 * MiB)
    const store = await tmpDir('thaw-edge-proxy-kill-')
    let partial = 0
    for (let round = 0; round < 3; round++) {
      const edge = await startProxy({}, store)
      const res = await fetch(`${edge.url}/v2/apps/killed/blobs/${digest}`, { headers: { range: `bytes=${20 * MiB}-${20 * MiB + 99}` } })
      expect(Buffer.from(await res.arrayBuffer()).equals(blob.subarray(20 * MiB, 20 * MiB + 100))).toBe(true)
      // The background fill is under way; kill the edge at some moment of it.
      await new Promise((r) => setTimeout(r, 20 + round * 60))
      await edge.process.kill()
      const state = await cacheState(store, digest, blob)
      if (!state.verified) partial++
    }
    // Restarted on the same store: everything it has is whole and right, and it serves the blob.
    const edge = await startProxy({}, store)
    const whole = Buffer.from(await (await fetch(`${edge.url}/v2/apps/killed/blobs/${digest}`)).arrayBuffer())
    expect(whole.equals(blob)).toBe(true)
    const range = await fetch(`${edge.url}/v2/apps/killed/blobs/${digest}`, { headers: { range: 'bytes=-1000' } })
    expect(Buffer.from(await range.arrayBuffer()).equals(blob.subarray(blob.length - 1000))).toBe(true)
    await expect.poll(async () => (await cacheState(store, digest, blob)).verified, { timeout: 30_000 }).toBe(true)
    await edge.process.stop()
    // At least one kill landed before the fill had finished (else this test proved nothing).
    expect(partial).toBeGreaterThan(0)
  })
})

/**
 * What is on disk for the blob, checked against the real bytes: every chunk file holds exactly
 * its slice of the blob (a torn or wrong chunk fails here), and no temp file is left visible.
 */
async function cacheState(store: string, digest: string, blob: Buffer): Promise<{ chunks: number; verified: boolean }> {
  const dir = join(store, 'cache', 'blobs', digest.slice(7))
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return { chunks: 0, verified: false }
  }
  let chunks = 0
  for (const name of names.filter((n) => /^\d+$/.test(n))) {
    const index = Number(name)
    const bytes = await readFile(join(dir, name))
    expect(bytes.equals(blob.subarray(index * MiB, (index + 1) * MiB)), `chunk ${index}`).toBe(true)
    chunks++
  }
  const verified = names.includes('verified')
  if (verified) expect(chunks).toBe(Math.ceil(blob.length / MiB))
  return { chunks, verified }
}
