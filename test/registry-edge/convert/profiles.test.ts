import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../../registry-edge/auth/password-hash.ts'
import { BundleDecoder } from '../../../runtime/artifact/index.ts'
import { DEFAULT_MIN_COLD_BYTES } from '../../../runtime/format/index.ts'
import { MediaType, type Descriptor } from '../../../runtime/oci/index.ts'
import { PROFILE_LIMITS } from '../../../runtime/profile/index.ts'
import { expectStatus, pushManifest, startTestEdge } from '../../support/edge-client.ts'
import { pushTarImage, waitForConversion } from '../../support/convert-image.ts'

const LAYERS = [
  [
    { name: 'a', content: 'a'.repeat(3000) },
    { name: 'b', content: 'b'.repeat(3000) },
  ],
]

function profile(subject: string, entries: unknown[] = [{ path: '/b', t: 1, ranges: [] }]) {
  return { version: 1, subject, workload: '', runs: 1, entries }
}

function post(
  url: string,
  repo: string,
  digest: string,
  body: string,
  headers: Record<string, string> = {},
) {
  return fetch(`${url}/v2/${repo}/_thaw/profiles/${digest}`, { method: 'POST', body, headers })
}

async function artifacts(url: string, repo: string, digest: string): Promise<Descriptor[]> {
  const res = await fetch(`${url}/v2/${repo}/referrers/${digest}`)
  const all = ((await res.json()) as { manifests: Descriptor[] }).manifests
  return all.filter((d) => d.artifactType === MediaType.thawStreaming)
}

describe('profile uploads', () => {
  // Uploads the edge refuses, each with its status and nothing stored.
  const bad: [string, (subject: string) => string, number][] = [
    // not JSON
    ['a body that is not JSON', () => '{', 400],
    // fails the schema (a relative path)
    [
      'a profile with a relative path',
      (s) => JSON.stringify(profile(s, [{ path: 'b', t: 1, ranges: [] }])),
      400,
    ],
    // recorded against another image
    ['a profile of another image', () => JSON.stringify(profile(`sha256:${'e'.repeat(64)}`)), 400],
    // over the size limit, refused before it is parsed
    [
      'a body over the size limit',
      (s) => JSON.stringify({ ...profile(s), pad: 'x'.repeat(PROFILE_LIMITS.bytes) }),
      413,
    ],
  ]
  it.each(bad)('refuses %s and stores nothing', async (_what, body, status) => {
    const { url } = await startTestEdge({ conversion: {} })
    const image = await pushTarImage(url, 'apps/p', 'v1', LAYERS)
    await waitForConversion(url, 'apps/p', image.digest)
    const res = await post(url, 'apps/p', image.digest, body(image.digest))
    expect(res.status).toBe(status)
    expect((await fetch(`${url}/v2/apps/p/_thaw/profiles/${image.digest}`)).status).toBe(404)
    expect(await artifacts(url, 'apps/p', image.digest)).toHaveLength(1)
  })

  it('answers 404 for a profile of an image the repository does not have', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const digest = `sha256:${'d'.repeat(64)}`
    expect((await post(url, 'apps/p', digest, JSON.stringify(profile(digest)))).status).toBe(404)
  })

  it('needs push on the repository to upload and pull to read, when auth is on', async () => {
    const users = {
      alice: { password: await hashPassword('alice-pw') },
      bob: { password: await hashPassword('bob-pw') },
    }
    const { url } = await startTestEdge({
      conversion: {},
      auth: {
        users,
        access: [
          { repository: 'apps/**', users: ['alice'], actions: ['pull', 'push'] },
          { repository: 'apps/**', users: ['bob'], actions: ['pull'] },
        ],
      },
    })
    const basic = (u: string) => `Basic ${Buffer.from(`${u}:${u}-pw`).toString('base64')}`
    const alice = { authorization: basic('alice') }
    const image = await pushTarImageAs(url, alice)
    const body = JSON.stringify(profile(image))
    const anonymous = await post(url, 'apps/p', image, body)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toBeTruthy()
    expect((await post(url, 'apps/p', image, body, { authorization: basic('bob') })).status).toBe(
      403,
    )
    await expectStatus(await post(url, 'apps/p', image, body, alice), 201)
    expect((await fetch(`${url}/v2/apps/p/_thaw/profiles/${image}`)).status).toBe(401)
    const read = await fetch(`${url}/v2/apps/p/_thaw/profiles/${image}`, {
      headers: { authorization: basic('bob') },
    })
    expect(read.status).toBe(200)
  })
})

describe('idempotence', () => {
  it('converts an image pushed twice once, and re-lays it out once per new profile', async () => {
    const { url, edge } = await startTestEdge({ conversion: {} })
    const { conversion } = edge
    const image = await pushTarImage(url, 'apps/i', 'v1', LAYERS)
    const first = await waitForConversion(url, 'apps/i', image.digest)
    expect(first).toMatchObject({ state: 'converted', generation: 0 })
    await expectStatus(await pushManifest(url, 'apps/i', 'v2', image.bytes.toString()), 201)
    // The listener runs after the push answers: wait until it has queued and finished.
    await waitForConversion(url, 'apps/i', image.digest, (s) => s.updatedAt !== first.updatedAt)
    await conversion!.converter.idle()
    expect(await waitForConversion(url, 'apps/i', image.digest)).toMatchObject({
      artifact: first.artifact,
    })
    expect(await artifacts(url, 'apps/i', image.digest)).toHaveLength(1)

    const body = JSON.stringify(profile(image.digest))
    await expectStatus(await post(url, 'apps/i', image.digest, body), 201)
    await conversion!.converter.idle()
    const relaid = await waitForConversion(url, 'apps/i', image.digest)
    expect(relaid).toMatchObject({ state: 'converted', generation: 1 })
    // The same run again (a retried upload) changes nothing: same profile, no new generation.
    const again = await post(url, 'apps/i', image.digest, body)
    await expectStatus(again, 201)
    expect(((await again.json()) as { runs: number }).runs).toBe(1)
    await conversion!.converter.idle()
    expect(await waitForConversion(url, 'apps/i', image.digest)).toMatchObject({
      artifact: relaid.artifact,
    })
    // Another run merges into a new profile: one more generation; a push after that reuses it.
    const other = JSON.stringify(profile(image.digest, [{ path: '/a', t: 1, ranges: [] }]))
    await expectStatus(await post(url, 'apps/i', image.digest, other), 201)
    await conversion!.converter.idle()
    const second = await waitForConversion(url, 'apps/i', image.digest)
    expect(second).toMatchObject({ generation: 2 })
    await expectStatus(await pushManifest(url, 'apps/i', 'v3', image.bytes.toString()), 201)
    await conversion!.converter.idle()
    expect(await waitForConversion(url, 'apps/i', image.digest)).toMatchObject({
      artifact: second.artifact,
      generation: 2,
    })
    expect(await artifacts(url, 'apps/i', image.digest)).toHaveLength(3)
  })
})

describe('workloads', () => {
  const run = (subject: string, workload: string, path: string) =>
    JSON.stringify({
      version: 1,
      subject,
      workload,
      runs: 1,
      entries: [{ path, t: 1, ranges: [] }],
    })
  const header = async (res: Response) => {
    const decoder = new BundleDecoder()
    decoder.push(new Uint8Array(await res.arrayBuffer()))
    return decoder.header!
  }

  it('keeps a profile per workload and builds a bundle per workload; the unnamed one is the default', async () => {
    const { url, edge } = await startTestEdge({ conversion: {} })
    const image = await pushTarImage(url, 'apps/w', 'v1', LAYERS)
    await waitForConversion(url, 'apps/w', image.digest)
    const d = image.digest
    const uploaded: Record<string, string> = {}
    for (const [workload, path] of [
      ['app/f1', '/a'],
      ['app/f2', '/b'],
    ] as const) {
      const res = await post(url, 'apps/w', d, run(d, workload, path))
      await expectStatus(res, 201)
      uploaded[workload] = ((await res.json()) as { profile: string }).profile
    }
    // A second run of f1 merges into f1's profile only.
    const again = await post(url, 'apps/w', d, run(d, 'app/f1', '/b'))
    expect(((await again.json()) as { runs: number }).runs).toBe(2)
    const profileOf = async (workload: string) => {
      const res = await fetch(
        `${url}/v2/apps/w/_thaw/profiles/${d}?workload=${encodeURIComponent(workload)}`,
      )
      return res.status === 200
        ? ((await res.json()) as { workload: string; entries: { path: string }[] })
        : res.status
    }
    expect(await profileOf('app/f1')).toMatchObject({
      workload: 'app/f1',
      entries: [{ path: '/a' }, { path: '/b' }],
    })
    expect(await profileOf('app/f2')).toMatchObject({
      workload: 'app/f2',
      runs: 1,
      entries: [{ path: '/b' }],
    })
    expect(await profileOf('')).toBe(404)

    // Both are referrers of the image, each naming its workload.
    const refs = (
      (await (await fetch(`${url}/v2/apps/w/referrers/${d}`)).json()) as { manifests: Descriptor[] }
    ).manifests
    const profiles = refs.filter((r) => r.artifactType === MediaType.thawProfile)
    expect(profiles.map((r) => r.annotations?.['dev.thaw.workload']).sort()).toEqual([
      'app/f1',
      'app/f2',
    ])

    await edge.conversion!.converter.idle()
    const bundle = (workload: string) =>
      fetch(`${url}/v2/apps/w/_thaw/bundle/${d}?workload=${encodeURIComponent(workload)}`)
    const f1 = await bundle('app/f1')
    const f2 = await bundle('app/f2')
    expect([f1.status, f2.status]).toEqual([200, 200])
    expect(f1.headers.get('etag')).not.toBe(f2.headers.get('etag'))
    const [h1, h2] = [await header(f1), await header(f2)]
    expect(h1.profile).not.toBe(uploaded['app/f1']) // merged with the second run since
    expect(h1.profile).toBe(
      await (
        await fetch(`${url}/v2/apps/w/_thaw/profiles/${d}?workload=app%2Ff1`)
      ).headers.get('docker-content-digest'),
    )
    expect(h2.profile).toBe(uploaded['app/f2'])
    expect(h1.artifact).toBe(h2.artifact)
    // No profile for the workload, its app or the default: no bundle.
    expect((await bundle('app/f3')).status).toBe(404)

    // The unnamed profile is the default of every workload without one of its own.
    await expectStatus(await post(url, 'apps/w', d, run(d, '', '/a')), 201)
    const fallback = await bundle('other/f')
    expect(fallback.status).toBe(200)
    expect((await header(fallback)).profile).toBe(
      (await fetch(`${url}/v2/apps/w/_thaw/profiles/${d}`)).headers.get('docker-content-digest'),
    )
  })
})

describe('bundles cut to the ranges read', () => {
  it('lays a file out by the union of the workloads’ ranges; each workload’s bundle carries its ranges, not the frames around them', async () => {
    const { url, edge } = await startTestEdge({ conversion: {} })
    const MiB = 1024 * 1024
    const image = await pushTarImage(url, 'apps/r', 'v1', [
      [
        { name: 'etc/conf', content: 'c'.repeat(2000) },
        { name: 'lib/big.so', content: randomBytes(4 * MiB) },
      ],
    ])
    await waitForConversion(url, 'apps/r', image.digest)
    const d = image.digest
    const read: Record<string, [number, number][]> = {
      'app/f1': [
        [0, 8 * 1024],
        [1.5 * MiB, 64 * 1024],
        [3 * MiB + 200 * 1024, 32 * 1024],
      ],
      'app/f2': [[2.5 * MiB, 16 * 1024]],
    }
    for (const [workload, ranges] of Object.entries(read)) {
      const run = { version: 1, subject: d, workload, runs: 1 }
      const entries = [
        { path: '/etc/conf', t: 1, ranges: [] },
        { path: '/lib/big.so', t: 2, ranges },
      ]
      await expectStatus(await post(url, 'apps/r', d, JSON.stringify({ ...run, entries })), 201)
    }
    await edge.conversion!.converter.idle()
    await waitForConversion(url, 'apps/r', d, (s) => s.state === 'converted' && !!s.profile)
    for (const [workload, ranges] of Object.entries(read)) {
      const res = await fetch(`${url}/v2/apps/r/_thaw/bundle/${d}?workload=${workload}`)
      expect(res.status).toBe(200)
      const decoder = new BundleDecoder()
      decoder.push(new Uint8Array(await res.arrayBuffer()))
      const frames = decoder.header!.records.slice(1).reduce((n, r) => n + r.length, 0)
      // The format's bound: the bytes read, the file's header and the small file read whole, at
      // most an unread stretch shorter than minColdBytes on each side of a range, and zstd's few
      // bytes per frame (random bytes do not compress). Whole 1 MiB frames would be 1 MiB a range.
      const n = ranges.reduce((sum, [, length]) => sum + length, 0)
      const bound = n + 512 + 2512 + ranges.length * (2 * DEFAULT_MIN_COLD_BYTES + 1024)
      expect(frames).toBeLessThanOrEqual(bound)
      expect(frames).toBeGreaterThanOrEqual(n)
    }
  })
})

/** pushTarImage with credentials: the helper has no headers, so push through a fetch wrapper. */
async function pushTarImageAs(url: string, headers: Record<string, string>): Promise<string> {
  const original = globalThis.fetch
  globalThis.fetch = (input, init) =>
    original(input, {
      ...init,
      headers: { ...(init?.headers as Record<string, string>), ...headers },
    })
  try {
    const image = await pushTarImage(url, 'apps/p', 'v1', LAYERS)
    await waitForConversion(url, 'apps/p', image.digest)
    return image.digest
  } finally {
    globalThis.fetch = original
  }
}
