import { readFile, readdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  BundleDecoder,
  GENERATION_ANNOTATION,
  pickStreamingArtifact,
  type BundleRecord,
} from '../../runtime/artifact/index.ts'
import {
  FsTree,
  framesFor,
  openImage,
  openBinaryIndex,
  parseFsIndex,
  type FsIndex,
} from '../../runtime/format/index.ts'
import { MediaType, digestHex, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import { expectStatus, sha256 } from '../support/edge-client.ts'
import {
  buildTestImage,
  readLayoutBlob,
  readLayoutImage,
  type TestImage,
} from '../support/edge-image.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MiB = 1024 * 1024

async function startEdge(
  store: string,
): Promise<{ url: string; address: string; process: TestProcess }> {
  const port = await freePort()
  const process = startProcess(THAW, ['edge', '--port', String(port), '--store', store])
  await process.waitFor(/"msg":"listening"/)
  return { url: `http://127.0.0.1:${port}`, address: `127.0.0.1:${port}`, process }
}

async function skopeoPush(image: TestImage, address: string, repo: string): Promise<void> {
  await run('skopeo', [
    'copy',
    '--preserve-digests',
    '--dest-tls-verify=false',
    `oci:${image.layout}:${image.tag}`,
    `docker://${address}/${repo}:${image.tag}`,
  ])
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url)
  await expectStatus(res, 200)
  return (await res.json()) as T
}

async function getBytes(
  url: string,
  headers: Record<string, string> = {},
): Promise<Response & { bytes: Buffer }> {
  const res = await fetch(url, { headers })
  return Object.assign(res, { bytes: Buffer.from(await res.arrayBuffer()) })
}

/** Polls `_thaw/status` until `until` holds (a generous bound: conversions run on 2 shared cores). */
async function waitForStatus(
  url: string,
  repo: string,
  digest: string,
  until: (s: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 120_000
  let last: unknown
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/v2/${repo}/_thaw/status/${digest}`)
    if (res.status === 200) {
      const status = (await res.json()) as Record<string, unknown>
      if (until(status)) return status
      last = status
    } else await res.arrayBuffer()
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`status of ${repo}@${digest} never matched; last: ${JSON.stringify(last)}`)
}

async function referrers(url: string, repo: string, digest: string): Promise<Descriptor[]> {
  return (await getJson<{ manifests: Descriptor[] }>(`${url}/v2/${repo}/referrers/${digest}`))
    .manifests
}

/** The original files of an OCI layout image: every layer extracted in order with tar. */
async function extractLayers(image: TestImage): Promise<string> {
  const root = await tmpDir('thaw-rootfs-')
  const { blobs } = await readLayoutImage(image.layout, image.tag)
  for (const digest of blobs.slice(1)) {
    await run('tar', ['-xzf', join(image.layout, 'blobs', ...digest.split(':')), '-C', root])
  }
  return root
}

/** The artifact's index, fetched through the edge. */
async function fetchIndex(
  url: string,
  repo: string,
  artifact: string,
): Promise<{ index: FsIndex; descriptor: Descriptor; binary: Descriptor }> {
  const manifest = await getJson<{ layers: Descriptor[]; subject: Descriptor }>(
    `${url}/v2/${repo}/manifests/${artifact}`,
  )
  const descriptor = manifest.layers[0]!
  const res = await getBytes(`${url}/v2/${repo}/blobs/${descriptor.digest}`)
  const index = parseFsIndex(res.bytes, { digest: descriptor.digest as Digest })
  // The last layer is the same index in binary form: every entry answers as in the JSON one.
  const binary = manifest.layers.at(-1)!
  expect(binary.mediaType).toBe(MediaType.thawIndexBinary)
  const bin = await getBytes(`${url}/v2/${repo}/blobs/${binary.digest}`)
  const view = openBinaryIndex(bin.bytes, { digest: binary.digest as Digest })
  expect(view.blobs).toEqual(index.blobs)
  const tree = new FsTree(index)
  for (const e of index.entries) {
    const { ino: _a, ...want } = tree.lookup(e.path)!
    const { ino: _b, ...got } = view.lookup(e.path)!
    expect(got).toEqual(want)
  }
  return { index, descriptor, binary }
}

let image: TestImage
let rootfs: string
let edge: Awaited<ReturnType<typeof startEdge>>
let edgeStore: string

beforeAll(async () => {
  image = await buildTestImage({ layers: 3, layerBytes: 2 * MiB })
  rootfs = await extractLayers(image)
  edgeStore = await tmpDir('thaw-edge-convert-')
  edge = await startEdge(edgeStore)
})

describe('conversion in a running edge, with skopeo', () => {
  it('converts an image pushed with skopeo into a referrer; the original manifest and blobs keep their digests', async () => {
    await skopeoPush(image, edge.address, 'apps/conv')
    const original = await readLayoutImage(image.layout, image.tag)
    const status = await waitForStatus(
      edge.url,
      'apps/conv',
      original.digest,
      (s) => s.state === 'converted',
    )
    const picked = pickStreamingArtifact(await referrers(edge.url, 'apps/conv', original.digest))
    expect(picked?.digest).toBe(status.artifact)
    expect(picked?.annotations?.[GENERATION_ANNOTATION]).toBe('0')

    const manifest = await getBytes(`${edge.url}/v2/apps/conv/manifests/${image.tag}`, {
      accept: MediaType.ociManifest,
    })
    expect(manifest.headers.get('docker-content-digest')).toBe(original.digest)
    expect(manifest.bytes.equals(original.bytes)).toBe(true)
    for (const digest of original.blobs) {
      const blob = await getBytes(`${edge.url}/v2/apps/conv/blobs/${digest}`)
      expect(sha256(blob.bytes)).toBe(digest)
      expect(blob.bytes.equals(await readLayoutBlob(image.layout, digest))).toBe(true)
    }
    // Every file of the image reads back through the artifact.
    const { index } = await fetchIndex(edge.url, 'apps/conv', picked!.digest)
    const reader = openImage(index, {
      read: async (b, offset, length) =>
        (
          await getBytes(`${edge.url}/v2/apps/conv/blobs/${b.digest}`, {
            range: `bytes=${offset}-${offset + length - 1}`,
          })
        ).bytes,
    })
    for (let i = 0; i < 3; i++) {
      const want = await readFile(join(rootfs, 'app', `layer-${i}`, 'data.bin'))
      expect(
        Buffer.from(await reader.read(`/app/layer-${i}/data.bin`, 0, want.length)).equals(want),
      ).toBe(true)
    }
  })

  it('re-lays the image out by the merged profile; the bundle holds exactly the profiled frames in order and decodes to the files', async () => {
    const repo = 'apps/profiled'
    await skopeoPush(image, edge.address, repo)
    const { digest: subject } = await readLayoutImage(image.layout, image.tag)
    await waitForStatus(edge.url, repo, subject, (s) => s.state === 'converted')
    expect((await fetch(`${edge.url}/v2/${repo}/_thaw/bundle/${subject}`)).status).toBe(404)

    // Two runs of one workload: merged, README (median t 2), data-0 (3.5), data-1 (4); /nope is
    // not a file of the image and is left out of the bundle.
    const runs = [
      [
        { path: '/app/layer-2/README', t: 1, ranges: [] },
        { path: '/app/layer-0/data.bin', t: 5, ranges: [[0, 65536]] },
        { path: '/nope', t: 6, ranges: [] },
      ],
      [
        { path: '/app/layer-2/README', t: 3, ranges: [] },
        { path: '/app/layer-0/data.bin', t: 2, ranges: [[1_500_000, 10]] },
        { path: '/app/layer-1/data.bin', t: 4, ranges: [[1_500_000, 10]] },
      ],
    ]
    let answer: { profile: string; runs: number } | undefined
    for (const entries of runs) {
      const res = await fetch(`${edge.url}/v2/${repo}/_thaw/profiles/${subject}`, {
        method: 'POST',
        headers: { 'content-type': MediaType.thawProfile },
        body: JSON.stringify({ version: 1, subject, workload: '', runs: 1, entries }),
      })
      await expectStatus(res, 201)
      answer = (await res.json()) as typeof answer
    }
    expect(answer!.runs).toBe(2)
    const merged = await getJson<{ entries: { path: string; ranges: [number, number][] }[] }>(
      `${edge.url}/v2/${repo}/_thaw/profiles/${subject}`,
    )
    expect(merged.entries).toEqual([
      { path: '/app/layer-2/README', t: 2, ranges: [] },
      {
        path: '/app/layer-0/data.bin',
        t: 3.5,
        ranges: [
          [0, 65536],
          [1_500_000, 10],
        ],
      },
      { path: '/app/layer-1/data.bin', t: 4, ranges: [[1_500_000, 10]] },
      { path: '/nope', t: 6, ranges: [] },
    ])
    const status = await waitForStatus(
      edge.url,
      repo,
      subject,
      (s) => s.state === 'converted' && s.profile === answer!.profile,
    )
    expect(status.generation).toBeGreaterThanOrEqual(1)
    // The re-layout builds the bundle before anyone asks for it (the first replay streams it).
    const bundleName = `${digestHex(status.artifact as Digest)}-${digestHex(answer!.profile as Digest)}.json`
    const bundlesDir = join(edgeStore, 'thaw', 'bundles')
    for (
      let t = Date.now();
      !(await readdir(bundlesDir).catch(() => [] as string[])).includes(bundleName);
    ) {
      if (Date.now() - t > 30_000)
        throw new Error(`no prebuilt bundle ${bundleName} in ${bundlesDir}`)
      await new Promise((r) => setTimeout(r, 50))
    }

    // The newest generation wins among the referrers; the profile is a referrer too.
    const refs = await referrers(edge.url, repo, subject)
    expect(pickStreamingArtifact(refs)?.digest).toBe(status.artifact)
    expect(
      refs.filter((d) => d.artifactType === MediaType.thawStreaming).length,
    ).toBeGreaterThanOrEqual(2)
    expect(refs.filter((d) => d.artifactType === MediaType.thawProfile)).toHaveLength(1)

    // Profiled files come first in their blobs (after their parent directories' headers), before
    // the prefetch end; the other files of those blobs come after it.
    const { index, binary } = await fetchIndex(edge.url, repo, status.artifact as string)
    const tree = new FsTree(index)
    const node = (path: string) => tree.lookup(path) as Parameters<typeof framesFor>[1]
    const whole = (path: string) => framesFor(index, node(path), 0, node(path).size)!
    for (const [profiled, other] of [
      ['/app/layer-2/README', '/app/layer-2/data.bin'],
      ['/app/layer-0/data.bin', '/app/layer-0/README'],
    ]) {
      const first = whole(profiled!)
      const rest = whole(other!)
      const blob = index.blobs[first.blob]!
      expect(rest.blob).toBe(first.blob)
      expect(blob.frames[first.last]!.coff).toBeLessThan(blob.prefetchEnd)
      expect(blob.frames[rest.first]!.coff).toBeGreaterThanOrEqual(blob.prefetchEnd)
    }

    // The frames the profile names, in its order, each once: what the bundle must hold.
    const expected: { blob: string; coff: number; clen: number }[] = []
    const seen = new Set<string>()
    const wanted = merged.entries
      .filter((e) => e.path !== '/nope')
      .flatMap((e) =>
        (e.ranges.length ? e.ranges : [[0, node(e.path).size] as [number, number]]).map(
          ([o, l]) => [e.path, o!, l!] as const,
        ),
      )
    for (const [path, offset, length] of wanted) {
      const span = framesFor(index, node(path), offset, length)!
      for (let i = span.first; i <= span.last; i++) {
        const frame = index.blobs[span.blob]!.frames[i]!
        if (seen.has(`${span.blob}:${i}`)) continue
        seen.add(`${span.blob}:${i}`)
        expected.push({ blob: index.blobs[span.blob]!.digest, coff: frame.coff, clen: frame.clen })
      }
    }

    const bundle = await getBytes(`${edge.url}/v2/${repo}/_thaw/bundle/${subject}`)
    expect(bundle.status).toBe(200)
    expect(bundle.headers.get('content-type')).toBe(MediaType.thawBundle)
    const etag = bundle.headers.get('etag')
    expect(etag).toBeTruthy()
    const decoder = new BundleDecoder()
    const records = decoder.push(bundle.bytes)
    decoder.end()
    expect(decoder.header!.artifact).toBe(status.artifact)
    expect(decoder.header!.profile).toBe(answer!.profile)
    // Record 0: the whole index blob the host reads (the binary one), and the header's start:
    // the artifact manifest (by its digest), its config and the image's config.
    expect(records[0]!.record).toEqual({ blob: binary.digest, offset: 0, length: binary.size })
    expect(sha256(records[0]!.bytes)).toBe(binary.digest)
    const start = decoder.header!.start!
    expect(sha256(Buffer.from(start.artifact, 'base64'))).toBe(status.artifact)
    const artifactManifest = JSON.parse(Buffer.from(start.artifact, 'base64').toString()) as { config: Descriptor; subject: Descriptor }
    expect(sha256(Buffer.from(start.config, 'base64'))).toBe(artifactManifest.config.digest)
    expect(artifactManifest.subject.digest).toBe(subject)
    expect(JSON.parse(Buffer.from(start.imageConfig, 'base64').toString())).toHaveProperty('rootfs')
    // The rest: the expected frames' bytes exactly, in order (runs of adjacent frames may merge).
    const got = records.slice(1)
    const flat = got.flatMap(({ record }) => splitIntoFrames(record, expected))
    expect(flat).toEqual(expected)
    for (const { record, bytes } of got) {
      const original = await getBytes(`${edge.url}/v2/${repo}/blobs/${record.blob}`, {
        range: `bytes=${record.offset}-${record.offset + record.length - 1}`,
      })
      expect(Buffer.from(bytes).equals(original.bytes)).toBe(true)
    }

    // The profiled bytes decode from the bundle alone to the original files' bytes.
    const reader = openImage(index, {
      read: async (b, offset, length) => fromBundle(got, b.digest, offset, length),
    })
    expect(Buffer.from(await reader.read('/app/layer-2/README', 0, 100)).toString()).toBe(
      'layer 2\n',
    )
    const data0 = await readFile(join(rootfs, 'app/layer-0/data.bin'))
    expect(
      Buffer.from(await reader.read('/app/layer-0/data.bin', 0, 65536)).equals(
        data0.subarray(0, 65536),
      ),
    ).toBe(true)
    const data1 = await readFile(join(rootfs, 'app/layer-1/data.bin'))
    expect(
      Buffer.from(await reader.read('/app/layer-1/data.bin', 1_500_000, 10)).equals(
        data1.subarray(1_500_000, 1_500_010),
      ),
    ).toBe(true)

    // Deterministic and cached: the same bytes and ETag again; a broken transfer resumes by Range.
    const again = await getBytes(`${edge.url}/v2/${repo}/_thaw/bundle/${subject}`)
    expect(again.headers.get('etag')).toBe(etag)
    expect(again.bytes.equals(bundle.bytes)).toBe(true)
    const at = Math.floor(bundle.bytes.length / 2)
    const tail = await getBytes(`${edge.url}/v2/${repo}/_thaw/bundle/${subject}`, {
      range: `bytes=${at}-`,
    })
    expect(tail.status).toBe(206)
    expect(tail.headers.get('content-range')).toBe(
      `bytes ${at}-${bundle.bytes.length - 1}/${bundle.bytes.length}`,
    )
    expect(tail.bytes.equals(bundle.bytes.subarray(at))).toBe(true)
  })

  it('does not convert into a repository whose streaming is switched off', async () => {
    const repo = 'apps/off'
    const put = await fetch(`${edge.url}/v2/${repo}/_thaw/settings`, {
      method: 'PUT',
      body: '{"streaming":false}',
    })
    await expectStatus(put, 200)
    await skopeoPush(image, edge.address, repo)
    const { digest } = await readLayoutImage(image.layout, image.tag)
    const status = await waitForStatus(edge.url, repo, digest, (s) => s.state !== 'pending')
    expect(status).toMatchObject({ state: 'skipped', code: 'STREAMING_DISABLED' })
    expect(await referrers(edge.url, repo, digest)).toEqual([])
  })
})

describe('an edge killed mid-conversion', () => {
  it('resumes the conversion after a restart on the same store', async () => {
    const big = await buildTestImage({ layers: 2, layerBytes: 24 * MiB, tag: 'big' })
    const { digest } = await readLayoutImage(big.layout, big.tag)
    const store = await tmpDir('thaw-edge-convert-kill-')
    const first = await startEdge(store)
    await skopeoPush(big, first.address, 'apps/big')
    await waitForStatus(first.url, 'apps/big', digest, (s) => s.state === 'converting')
    await first.process.kill()
    // The work directory holds the half-done conversion's temp files (or nothing yet).
    const state = JSON.parse(await readStateFile(store)) as { state: string }
    expect(state.state).toBe('converting')

    const second = await startEdge(store)
    await second.process.waitFor(/"msg":"conversion resumed"/)
    const status = await waitForStatus(
      second.url,
      'apps/big',
      digest,
      (s) => s.state !== 'converting' && s.state !== 'pending',
    )
    expect(status.state).toBe('converted')
    expect(pickStreamingArtifact(await referrers(second.url, 'apps/big', digest))?.digest).toBe(
      status.artifact,
    )
    expect(await readdir(join(store, 'thaw', 'work'))).toEqual([])
    await second.process.stop()
  })
})

/** The one conversion state file under <store>/thaw/state. */
async function readStateFile(store: string): Promise<string> {
  const found: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name))
      else if (e.name.endsWith('.json')) found.push(join(dir, e.name))
    }
  }
  await walk(join(store, 'thaw', 'state'))
  expect(found).toHaveLength(1)
  return readFile(found[0]!, 'utf8')
}

/** A record's frames, by matching it against the expected frame list (fails the test on a mismatch). */
function splitIntoFrames(
  record: BundleRecord,
  frames: { blob: string; coff: number; clen: number }[],
) {
  const out: { blob: string; coff: number; clen: number }[] = []
  let at = record.offset
  while (at < record.offset + record.length) {
    const frame = frames.find((f) => f.blob === record.blob && f.coff === at)
    if (!frame) return [...out, { blob: record.blob, coff: at, clen: -1 }]
    out.push(frame)
    at += frame.clen
  }
  return out
}

/** Bytes [offset, offset+length) of a blob, from the bundle's records only (adjacent records join). */
function fromBundle(
  records: { record: BundleRecord; bytes: Uint8Array }[],
  blob: string,
  offset: number,
  length: number,
): Uint8Array {
  const mine = records
    .filter((r) => r.record.blob === blob)
    .sort((a, b) => a.record.offset - b.record.offset)
  const out = Buffer.alloc(length)
  let filled = 0
  for (const { record, bytes } of mine) {
    const from = Math.max(offset + filled, record.offset)
    const to = Math.min(offset + length, record.offset + record.length)
    if (from !== offset + filled || to <= from) continue
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).copy(
      out,
      filled,
      from - record.offset,
      to - record.offset,
    )
    filled = to - offset
  }
  if (filled !== length)
    throw new Error(`bytes ${offset}+${length} of ${blob} are not in the bundle`)
  return out
}
