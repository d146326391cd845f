import { randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { GcReport } from '../../registry-edge/gc/edge-gc.ts'
import { checkStore } from '../../registry-edge/store/check-store.ts'
import { MediaType, type Descriptor } from '../../runtime/oci/index.ts'
import { pushTarImage, waitForConversion } from '../support/convert-image.ts'
import { expectStatus, pushImage, sha256, startTestEdge } from '../support/edge-client.ts'
import { buildTestImage, readLayoutBlob, readLayoutImage } from '../support/edge-image.ts'
import { run } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'
import { formatBytes } from '../../runtime/text/format-bytes.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const GRACE_MS = 2000
const KEEP = 2
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Manifest = { config: Descriptor; layers: Descriptor[] } & Record<string, unknown>

async function getJson<T>(url: string, accept: string = MediaType.ociManifest): Promise<T> {
  const res = await fetch(url, { headers: { accept } })
  await expectStatus(res, 200)
  return (await res.json()) as T
}

/**
 * What the store must hold, found through the registry API alone (not the collector's code):
 * every tagged manifest, its referrers, and the config and layers of each, with their sizes.
 */
async function expectedBlobs(url: string, repos: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const addManifest = async (repo: string, ref: string) => {
    const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
      headers: { accept: MediaType.ociManifest },
    })
    await expectStatus(res, 200)
    const bytes = Buffer.from(await res.arrayBuffer())
    out.set(sha256(bytes), bytes.length)
    const m = JSON.parse(bytes.toString()) as Manifest
    for (const d of [m.config, ...m.layers]) out.set(d.digest, d.size)
    return sha256(bytes)
  }
  for (const repo of repos) {
    const { tags } = await getJson<{ tags: string[] }>(`${url}/v2/${repo}/tags/list`)
    for (const tag of tags) {
      const digest = await addManifest(repo, tag)
      const { manifests } = await getJson<{ manifests: Descriptor[] }>(
        `${url}/v2/${repo}/referrers/${digest}`,
        MediaType.ociIndex,
      )
      for (const r of manifests) await addManifest(repo, r.digest)
    }
  }
  return out
}

async function storedBlobs(store: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const root = join(store, 'blobs', 'sha256')
  for (const prefix of await readdir(root)) {
    for (const hex of await readdir(join(root, prefix)))
      out.set(`sha256:${hex}`, (await stat(join(root, prefix, hex))).size)
  }
  return out
}

async function streamingArtifacts(
  url: string,
  repo: string,
  digest: string,
): Promise<Descriptor[]> {
  const { manifests } = await getJson<{ manifests: Descriptor[] }>(
    `${url}/v2/${repo}/referrers/${digest}`,
    MediaType.ociIndex,
  )
  return manifests.filter((d) => d.artifactType === MediaType.thawStreaming)
}

function postProfile(url: string, repo: string, subject: string, path: string) {
  const body = JSON.stringify({
    version: 1,
    subject,
    workload: 'w',
    runs: 1,
    entries: [{ path, t: 1, ranges: [] }],
  })
  return fetch(`${url}/v2/${repo}/_thaw/profiles/${subject}`, { method: 'POST', body })
}

describe('garbage collection on a live edge', () => {
  it('collects superseded generations, deleted images and unreferenced blobs while pushes, re-layouts and pulls go on', async () => {
    const edge = await startTestEdge({
      conversion: {},
      gc: { intervalMs: 0, graceMs: GRACE_MS, keepGenerations: KEEP },
    })
    const { url, store } = edge
    const address = url.replace('http://', '')
    const files = Array.from({ length: 6 }, (_, i) => ({
      name: `f${i}`,
      content: randomBytes(200_000),
    }))
    const app = await pushTarImage(url, 'apps/a', 'v1', [
      files,
      [{ name: 'app.js', content: 'console.log(1)' }],
    ])
    await waitForConversion(url, 'apps/a', app.digest)
    // Another image, pushed only to be deleted: its blobs and artifact must go.
    const doomed = await pushTarImage(url, 'apps/doomed', 'v1', [
      [{ name: 'x', content: randomBytes(300_000) }],
    ])
    await waitForConversion(url, 'apps/doomed', doomed.digest)
    const layoutImage = await buildTestImage({ layers: 2, layerBytes: 256 * 1024, tag: 'v1' })
    const pushedC = await readLayoutImage(layoutImage.layout, 'v1')

    const reports: GcReport[] = []
    let stop = false
    const collecting = (async () => {
      while (!stop) {
        reports.push(await edge.edge.gc.run({ dryRun: false }))
        await sleep(20)
      }
    })()
    // Five profile generations of apps/a, one after the other.
    const relayouts = (async () => {
      for (let g = 1; g <= 5; g++) {
        await expectStatus(await postProfile(url, 'apps/a', app.digest, `/f${g}`), 201)
        await waitForConversion(
          url,
          'apps/a',
          app.digest,
          (s) => s.generation === g && s.state === 'converted',
        )
      }
    })()
    // skopeo pushes apps/c again and again, each time right after deleting it: its blobs are then
    // unreferenced and old, skopeo HEADs them, finds them and pushes only the manifest.
    const pushes = (async () => {
      for (let i = 0; i < 4; i++) {
        await run('skopeo', [
          'copy',
          '--dest-tls-verify=false',
          `oci:${layoutImage.layout}:v1`,
          `docker://${address}/apps/c:v1`,
        ])
        for (const digest of pushedC.blobs) {
          const res = await fetch(`${url}/v2/apps/c/blobs/${digest}`)
          expect(res.status, `blob ${digest} after push ${i}`).toBe(200)
          expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest)
        }
        if (i < 3) {
          await expectStatus(
            await fetch(`${url}/v2/apps/c/manifests/${pushedC.digest}`, { method: 'DELETE' }),
            202,
          )
          await sleep(GRACE_MS * (i % 2)) // half the time the blobs are already collectable
        }
      }
    })()
    await Promise.all([relayouts, pushes])
    await expectStatus(
      await fetch(`${url}/v2/apps/doomed/manifests/${doomed.digest}`, { method: 'DELETE' }),
      202,
    )
    stop = true
    await collecting
    expect(reports.length).toBeGreaterThan(3)

    // Past the grace period, a collection leaves exactly what the tags and their referrers use.
    await sleep(GRACE_MS + 100)
    const last = await edge.edge.gc.run({ dryRun: false })
    const all = [...reports, last]
    expect(
      all.flatMap((r) => r.manifests).filter((m) => m.why === 'superseded-generation'),
    ).toHaveLength(6 - KEEP)
    expect(
      all
        .flatMap((r) => r.manifests)
        .some((m) => m.why === 'subject-deleted' && m.subject === doomed.digest),
    ).toBe(true)
    const generations = await streamingArtifacts(url, 'apps/a', app.digest)
    expect(generations.map((d) => d.annotations?.['dev.thaw.generation']).sort()).toEqual([
      '4',
      '5',
    ])
    // Profile runs were compacted meanwhile; the bundles of collected generations are gone.
    expect(all.reduce((n, r) => n + r.profileRuns.count, 0)).toBeGreaterThan(0)
    const bundles = (await readdir(join(store, 'thaw', 'bundles'))).filter((f) =>
      f.endsWith('.bundle'),
    )
    expect(bundles.length).toBeGreaterThan(0)
    for (const b of bundles)
      expect(generations.map((d) => d.digest)).toContain(`sha256:${b.split('-')[0]}`)
    const expected = await expectedBlobs(url, ['apps/a', 'apps/c'])
    expect(await storedBlobs(store)).toEqual(expected)
    expect(await checkStore(store)).toEqual([])
    expect(await edge.edge.gc.run({ dryRun: true })).toMatchObject({
      manifests: [],
      layerLinks: 0,
      blobs: { count: 0 },
    })

    // Every tagged image still pulls, byte-identical.
    const out = join(await tmpDir('thaw-gc-pull-'), 'layout')
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${address}/apps/c:v1`,
      `oci:${out}:v1`,
    ])
    const pulledC = await readLayoutImage(out, 'v1')
    expect(pulledC.digest).toBe(pushedC.digest)
    for (const d of pushedC.blobs)
      expect(
        (await readLayoutBlob(out, d)).equals(await readLayoutBlob(layoutImage.layout, d)),
      ).toBe(true)
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${address}/apps/a:v1`,
      `oci:${out}:a`,
    ])
    const pulledA = await readLayoutImage(out, 'a')
    expect(pulledA.digest).toBe(app.digest)
    for (const [i, d] of app.blobs.entries()) {
      const bytes = await readLayoutBlob(out, d)
      expect(i === 0 ? sha256(bytes) : bytes.equals(app.layers[i - 1]!)).toBe(i === 0 ? d : true)
    }

    // What was freed is counted in /metrics.
    const metrics = await (await fetch(`${url}/metrics`)).text()
    const freed = all.reduce((n, r) => n + r.blobs.bytes, 0)
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('thaw_edge_gc_freed_bytes_total{kind="blobs"'))
    expect(Number(line?.split(' ').pop())).toBe(freed)
    expect(freed).toBeGreaterThan(0)
  })
})

describe('thaw edge gc', () => {
  it('reports what a collection would free with --dry-run, frees it without, and counts it in /metrics', async () => {
    // The edge in this process (its startup is not what is tested); the CLI a real process.
    const { url, edge } = await startTestEdge({ gc: { intervalMs: 0, graceMs: 0 } })
    const image = await pushImage(url, 'apps/gone', 'v1', [
      randomBytes(300_000),
      randomBytes(200_000),
    ])
    await pushImage(url, 'apps/kept', 'v1', [randomBytes(1000)])
    await expectStatus(
      await fetch(`${url}/v2/apps/gone/manifests/${image.digest}`, { method: 'DELETE' }),
      202,
    )

    const gc = async (...args: string[]) =>
      (await run(THAW, ['edge', 'gc', '--edge', url, ...args])).stdout
    const dry = await gc('--dry-run')
    // The manifest and its two layers (the config is apps/kept's too, so its blob stays), and
    // apps/gone's links to its config and layers.
    const freed = formatBytes(image.bytes.length + 500_000)
    expect(dry).toMatch(new RegExp(`^dry run: would free ${freed}\\n`))
    expect(dry).toMatch(new RegExp(`unreferenced blobs +3 \\(${freed}\\)`))
    expect(dry).toMatch(/layer links no manifest uses +3\n/)
    const layer = image.manifest.layers[0]!.digest
    expect((await fetch(`${url}/v2/apps/gone/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200) // a dry run removes nothing
    const done = await gc()
    expect(done).toBe(dry.replace('dry run: would free', 'freed'))
    expect(await edge.gc.run({ dryRun: true })).toMatchObject({ freedBytes: 0, layerLinks: 0 })
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/thaw_edge_gc_removed_total\{kind="blobs"[^}]*\} 3\n/)
    console.log(`thaw edge gc --dry-run:\n${dry}`)
  })
})
