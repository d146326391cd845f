import { randomBytes } from 'node:crypto'
import { readdir, stat, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkStore } from '../../../registry-edge/store/check-store.ts'
import type { DiskStore } from '../../../registry-edge/store/disk-store.ts'
import { collectStore } from '../../../registry-edge/store/store-gc.ts'
import { SweepGuard } from '../../../registry-edge/store/sweep-guard.ts'
import { parseDigest } from '../../../runtime/oci/index.ts'
import { expectStatus, pushBlob, pushImage, startTestEdge } from '../../support/edge-client.ts'

const GRACE = { graceMs: 60_000, keepGenerations: 2 }
/** A collection as if it ran two grace periods from now: what the test did is old by then. */
const later = () => ({ now: Date.now() + 2 * GRACE.graceMs })

/** Dates every file of the store an hour back: all of it is past the grace period. */
async function ageStore(root: string): Promise<void> {
  const past = new Date(Date.now() - 3600_000)
  for (const dir of ['blobs', 'repositories']) {
    for (const e of await readdir(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile()) await utimes(join(e.parentPath, e.name), past, past)
    }
  }
}

async function edgeWithStore() {
  const edge = await startTestEdge({ gc: { intervalMs: 0 } })
  return { ...edge, disk: edge.edge.backend as DiskStore }
}

const blobExists = (store: string, digest: string) =>
  stat(join(store, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7))).then(
    () => true,
    () => false,
  )

describe('store garbage collection', () => {
  it('removes a blob no manifest references, with its link, once past the grace period; a dry run only reports it', async () => {
    const { url, store, disk } = await edgeWithStore()
    const image = await pushImage(url, 'apps/a', 'v1', [randomBytes(1000)])
    const stray = await pushBlob(url, 'apps/a', randomBytes(5000))
    // Younger than the grace period: kept.
    expect(await collectStore(disk, GRACE, { dryRun: false })).toMatchObject({
      blobs: { count: 0 },
      layerLinks: 0,
    })
    expect(await collectStore(disk, GRACE, { dryRun: true, ...later() })).toMatchObject({
      blobs: { count: 1, bytes: 5000 },
      layerLinks: 1,
    })
    expect(await blobExists(store, stray)).toBe(true)
    expect(await collectStore(disk, GRACE, { dryRun: false, ...later() })).toMatchObject({
      blobs: { count: 1, bytes: 5000 },
      layerLinks: 1,
    })
    expect(await blobExists(store, stray)).toBe(false)
    for (const d of [image.digest, image.configDigest, image.manifest.layers[0]!.digest])
      expect(await blobExists(store, d)).toBe(true)
    expect(await checkStore(store)).toEqual([])
  })

  it('removes what a deleted manifest used, except what another repository still references', async () => {
    const { url, store, disk } = await edgeWithStore()
    const shared = randomBytes(2000)
    const own = randomBytes(3000)
    const kept = await pushImage(url, 'apps/kept', 'v1', [shared])
    const gone = await pushImage(url, 'apps/gone', 'v1', [shared, own])
    await expectStatus(
      await fetch(`${url}/v2/apps/gone/manifests/${gone.digest}`, { method: 'DELETE' }),
      202,
    )
    const report = await collectStore(disk, GRACE, { dryRun: false, ...later() })
    // The manifest, its own layer; the config is the same bytes as apps/kept's and stays.
    expect(report.blobs.count).toBe(2)
    expect(await blobExists(store, gone.digest)).toBe(false)
    expect(await blobExists(store, gone.manifest.layers[1]!.digest)).toBe(false)
    expect(await blobExists(store, kept.manifest.layers[0]!.digest)).toBe(true)
    // apps/gone's links are gone too: a HEAD there is 404, apps/kept's 200.
    const head = (repo: string) =>
      fetch(`${url}/v2/${repo}/blobs/${kept.manifest.layers[0]!.digest}`, { method: 'HEAD' })
    expect((await head('apps/gone')).status).toBe(404)
    expect((await head('apps/kept')).status).toBe(200)
    expect(await checkStore(store)).toEqual([])
  })

  it('removes an image no tag reaches only with deleteUntagged, past the grace period, and reports it', async () => {
    const { url, store, disk } = await edgeWithStore()
    const old = await pushImage(url, 'apps/u', 'v1', [randomBytes(1500)])
    const current = await pushImage(url, 'apps/u', 'v1', [randomBytes(1600)]) // the tag moves on
    // Off by default (as in distribution): an image pushed by digest only stays.
    expect((await collectStore(disk, GRACE, { dryRun: false, ...later() })).manifests).toEqual([])
    expect(await blobExists(store, old.digest)).toBe(true)
    const policy = { ...GRACE, deleteUntagged: true }
    // Younger than the grace period: kept.
    expect((await collectStore(disk, policy, { dryRun: false })).manifests).toEqual([])
    const untagged = [
      { repository: 'apps/u', digest: old.digest, why: 'untagged', subject: old.digest },
    ]
    const dry = await collectStore(disk, policy, { dryRun: true, ...later() })
    expect(dry.manifests).toEqual(untagged)
    expect(await blobExists(store, old.digest)).toBe(true)
    const report = await collectStore(disk, policy, { dryRun: false, ...later() })
    expect(report.manifests).toEqual(untagged)
    // The manifest and its own layer; the config is the same bytes as the tagged image's.
    expect(report.blobs.count).toBe(2)
    expect((await fetch(`${url}/v2/apps/u/manifests/${old.digest}`)).status).toBe(404)
    expect(
      (await fetch(`${url}/v2/apps/u/manifests/v1`)).headers.get('docker-content-digest'),
    ).toBe(current.digest)
    expect(await blobExists(store, current.manifest.layers[0]!.digest)).toBe(true)
    expect(await checkStore(store)).toEqual([])
  })

  it('keeps an old, unreferenced blob a client HEADed within the grace period, so its manifest PUT finds it', async () => {
    const { url, store, disk } = await edgeWithStore()
    const layer = randomBytes(4000)
    const first = await pushImage(url, 'apps/again', 'v1', [layer])
    await expectStatus(
      await fetch(`${url}/v2/apps/again/manifests/${first.digest}`, { method: 'DELETE' }),
      202,
    )
    await ageStore(store)
    const digests = [first.configDigest, first.manifest.layers[0]!.digest].map(parseDigest)
    await new Promise((r) => setTimeout(r, 300))
    // A client pushing the image again finds its blobs (HEAD 200) and skips their upload...
    const headAt = Date.now()
    for (const d of digests) {
      const head = await fetch(`${url}/v2/apps/again/blobs/${d}`, { method: 'HEAD' })
      expect(head.status).toBe(200)
    }
    // ...a collection runs before its manifest arrives (as if the grace period were almost
    // over: the push's own requests are older than it, the HEADs not)...
    const now = headAt + GRACE.graceMs - 100
    const report = await collectStore(disk, GRACE, { dryRun: false, now })
    expect(report.blobs.count).toBe(1) // the deleted manifest
    for (const d of digests) expect(await blobExists(store, d)).toBe(true)
    // ...and the manifest PUT succeeds, its blobs still there.
    const res = await fetch(`${url}/v2/apps/again/manifests/v1`, {
      method: 'PUT',
      body: first.bytes,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    })
    await expectStatus(res, 201)
    await collectStore(disk, GRACE, { dryRun: false, ...later() })
    for (const d of digests) expect(await blobExists(store, d)).toBe(true)
    expect(await checkStore(store)).toEqual([])
  })
})

describe('sweep guard', () => {
  it('refuses to remove a digest touched since the cutoff, and lets a touch wait for a removal under way', async () => {
    const guard = new SweepGuard()
    const d = parseDigest(`sha256:${'a'.repeat(64)}`)
    const before = Date.now()
    await guard.touch(d)
    expect(await guard.remove(d, before, async () => {})).toBe(false)
    expect(await guard.remove(d, Date.now() + 1, async () => {})).toBe(true)
    const order: string[] = []
    let finish!: () => void
    const removing = guard.remove(d, Date.now() + 1, () =>
      new Promise<void>((r) => (finish = r)).then(() => order.push('removed')),
    )
    const touching = guard.touch(d).then(() => order.push('touch returned'))
    finish()
    await Promise.all([removing, touching])
    expect(order).toEqual(['removed', 'touch returned'])
  })
})
