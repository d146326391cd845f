import { describe, expect, it } from 'vitest'
import { hashPassword } from '../../../registry-edge/auth/password-hash.ts'
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
  return { version: 1, subject, workload: 'w', runs: 1, entries }
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
