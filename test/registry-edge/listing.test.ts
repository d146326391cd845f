import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { errorCode, expectStatus, pushBlob, pushImage, pushManifest, startTestEdge } from '../support/edge-client.ts'

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const ARTIFACT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }
let url: string

beforeAll(async () => {
  ;({ url } = await startTestEdge())
})

describe('GET /v2/<name>/tags/list', () => {
  const tags = ['a', 'b', 'c', 'd', 'e']

  beforeAll(async () => {
    const image = await pushImage(url, 'apps/tags', 'e', [randomBytes(10)])
    for (const tag of tags.slice(0, -1).reverse()) await expectStatus(await pushManifest(url, 'apps/tags', tag, image.manifest), 201)
  })

  it('lists every tag in lexical order', async () => {
    const res = await fetch(`${url}/v2/apps/tags/tags/list`)
    expect(await res.json()).toEqual({ name: 'apps/tags', tags })
    expect(res.headers.get('link')).toBeNull()
  })

  it('pages with n and last, and links to the next page', async () => {
    const first = await fetch(`${url}/v2/apps/tags/tags/list?n=2`)
    expect(await first.json()).toEqual({ name: 'apps/tags', tags: ['a', 'b'] })
    expect(first.headers.get('link')).toBe('</v2/apps/tags/tags/list?n=2&last=b>; rel="next"')
    const second = await fetch(`${url}/v2/apps/tags/tags/list?n=2&last=b`)
    expect(await second.json()).toEqual({ name: 'apps/tags', tags: ['c', 'd'] })
    const last = await fetch(`${url}/v2/apps/tags/tags/list?n=2&last=d`)
    expect(await last.json()).toEqual({ name: 'apps/tags', tags: ['e'] })
    expect(last.headers.get('link')).toBeNull()
    expect(await (await fetch(`${url}/v2/apps/tags/tags/list?last=c`)).json()).toEqual({ name: 'apps/tags', tags: ['d', 'e'] })
    expect(await (await fetch(`${url}/v2/apps/tags/tags/list?n=0`)).json()).toEqual({ name: 'apps/tags', tags: [] })
  })

  it('rejects an n that is not a non-negative integer', async () => {
    expect((await fetch(`${url}/v2/apps/tags/tags/list?n=-1`)).status).toBe(400)
    expect((await fetch(`${url}/v2/apps/tags/tags/list?n=ten`)).status).toBe(400)
  })

  it('returns NAME_UNKNOWN for a repository that does not exist', async () => {
    const res = await fetch(`${url}/v2/apps/never/tags/list`)
    expect(res.status).toBe(404)
    expect(await errorCode(res)).toBe('NAME_UNKNOWN')
  })
})

describe('GET /v2/_catalog', () => {
  it('lists repositories with manifests, sorted and paged', async () => {
    const { url: edge } = await startTestEdge()
    for (const repo of ['zeta/app', 'alpha', 'mid/deep/er']) await pushImage(edge, repo, 'v1', [randomBytes(5)])
    await pushBlob(edge, 'only/blobs', randomBytes(5))
    expect(await (await fetch(`${edge}/v2/_catalog`)).json()).toEqual({ repositories: ['alpha', 'mid/deep/er', 'zeta/app'] })
    const page = await fetch(`${edge}/v2/_catalog?n=1&last=alpha`)
    expect(await page.json()).toEqual({ repositories: ['mid/deep/er'] })
    expect(page.headers.get('link')).toBe('</v2/_catalog?n=1&last=mid%2Fdeep%2Fer>; rel="next"')
  })
})

describe('GET /v2/<name>/referrers/<digest>', () => {
  let subject: Awaited<ReturnType<typeof pushImage>>

  beforeAll(async () => {
    subject = await pushImage(url, 'apps/refs', 'v1', [randomBytes(10)])
    await pushBlob(url, 'apps/refs', Buffer.from('{}'))
  })

  const artifact = (artifactType: string, annotations?: Record<string, string>) => ({
    schemaVersion: 2,
    mediaType: ARTIFACT_MANIFEST,
    artifactType,
    config: EMPTY,
    layers: [EMPTY],
    subject: { mediaType: ARTIFACT_MANIFEST, digest: subject.digest, size: subject.bytes.length },
    ...(annotations ? { annotations } : {}),
  })

  it('answers a push with a subject with OCI-Subject, and lists it with artifactType and annotations', async () => {
    const manifest = artifact('application/vnd.thaw.streaming.v1', { 'org.opencontainers.image.created': '2026-11-22T00:00:00Z' })
    const put = await pushManifest(url, 'apps/refs', 'streaming', manifest)
    expect(put.status).toBe(201)
    expect(put.headers.get('oci-subject')).toBe(subject.digest)
    const res = await fetch(`${url}/v2/apps/refs/referrers/${subject.digest}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(OCI_INDEX)
    expect(res.headers.get('oci-filters-applied')).toBeNull()
    const index = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: unknown[] }
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: OCI_INDEX })
    expect(index.manifests).toContainEqual({
      mediaType: ARTIFACT_MANIFEST,
      digest: put.headers.get('docker-content-digest'),
      size: JSON.stringify(manifest).length,
      artifactType: 'application/vnd.thaw.streaming.v1',
      annotations: { 'org.opencontainers.image.created': '2026-11-22T00:00:00Z' },
    })
  })

  it('filters by artifactType and says so with OCI-Filters-Applied', async () => {
    await expectStatus(await pushManifest(url, 'apps/refs', 'profile', artifact('application/vnd.thaw.profile.v1+json')), 201)
    const res = await fetch(`${url}/v2/apps/refs/referrers/${subject.digest}?artifactType=application/vnd.thaw.profile.v1%2Bjson`)
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType')
    const index = (await res.json()) as { manifests: { artifactType: string }[] }
    expect(index.manifests.map((m) => m.artifactType)).toEqual(['application/vnd.thaw.profile.v1+json'])
  })

  it('lists an empty index, never 404, for a digest nothing refers to', async () => {
    const res = await fetch(`${url}/v2/apps/refs/referrers/sha256:${'0'.repeat(64)}`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })
  })

  it('accepts a referrer whose subject does not exist yet', async () => {
    const missing = `sha256:${'1'.repeat(64)}`
    const manifest = { ...artifact('application/x.test'), subject: { mediaType: ARTIFACT_MANIFEST, digest: missing, size: 10 } }
    expect((await pushManifest(url, 'apps/refs', 'early', manifest)).status).toBe(201)
    const index = (await (await fetch(`${url}/v2/apps/refs/referrers/${missing}`)).json()) as { manifests: unknown[] }
    expect(index.manifests).toHaveLength(1)
  })

  it('drops a deleted referrer from the list', async () => {
    const put = await pushManifest(url, 'apps/refs', 'gone', artifact('application/x.gone'))
    const digest = put.headers.get('docker-content-digest')!
    expect((await fetch(`${url}/v2/apps/refs/manifests/${digest}`, { method: 'DELETE' })).status).toBe(202)
    const res = await fetch(`${url}/v2/apps/refs/referrers/${subject.digest}?artifactType=application/x.gone`)
    expect(((await res.json()) as { manifests: unknown[] }).manifests).toEqual([])
  })
})
