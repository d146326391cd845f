import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createImageMounts, type ImageMountsHandle } from '../../host/mount/create-image-mounts.ts'
import type { EdgeLogger } from '../../registry-edge/observability/edge-logger.ts'
import { parseFsIndex } from '../../runtime/format/index-codec.ts'
import { MediaType, type Descriptor, type Digest } from '../../runtime/oci/index.ts'
import { pushTarImage, waitForConversion } from '../support/convert-image.ts'
import { expectStatus, startTestEdge } from '../support/edge-client.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { forceUnmount, runReader } from '../support/mount-process.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * Dedup by content across artifact generations (runtime/format README "Dedup by content"): a
 * re-layout keeps every frame it did not move, and a host that cached generation N copies those
 * from its cache when it mounts N+1, fetching only the frames that moved (counted at the edge).
 */
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const files = Array.from({ length: 160 }, (_, i) => ({
  name: `f${String(i).padStart(3, '0')}`,
  content: randomBytes(24_000),
}))

/** Blob GETs the edge answered: digest → bytes served. */
function servedBlobs(lines: Record<string, unknown>[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const l of lines) {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(String(l.path))
    if (l.method === 'GET' && m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(l.bytes))
  }
  return out
}

describe.skipIf(fuseUnavailable)('artifact generations on a host', () => {
  const open: ImageMountsHandle[] = []
  afterAll(async () => {
    for (const m of open) {
      await m.close()
      for (const x of m.mounted()) forceUnmount(x.dir)
    }
  })

  it('a host that cached generation N fetches only the frames that moved in N+1; identical layers of two images are one streaming blob', async () => {
    const lines: Record<string, unknown>[] = []
    const logger: EdgeLogger = {
      info: (msg, f) => void (msg === 'request' && lines.push(f ?? {})),
      warn() {},
      error() {},
    }
    const { url } = await startTestEdge({ conversion: {}, gc: { intervalMs: 0 }, logger })
    const address = url.replace('http://', '')
    const app = await pushTarImage(url, 'apps/gen', 'v1', [
      files,
      [{ name: 'app.js', content: 'one' }],
    ])
    await waitForConversion(url, 'apps/gen', app.digest)
    const other = await pushTarImage(url, 'apps/other', 'v1', [
      files,
      [{ name: 'app.js', content: 'two' }],
    ])
    await waitForConversion(url, 'apps/other', other.digest)

    const newest = async (repo: string, subject: string) => {
      const res = await fetch(`${url}/v2/${repo}/referrers/${subject}`)
      const { manifests } = (await res.json()) as { manifests: Descriptor[] }
      const d = manifests
        .filter((m) => m.artifactType === MediaType.thawStreaming)
        .sort(
          (a, b) =>
            Number(b.annotations?.['dev.thaw.generation']) -
            Number(a.annotations?.['dev.thaw.generation']),
        )[0]!
      const manifest = (await (
        await fetch(`${url}/v2/${repo}/manifests/${d.digest}`, {
          headers: { accept: MediaType.ociManifest },
        })
      ).json()) as { layers: Descriptor[] }
      const index = manifest.layers.find((l) => l.mediaType === MediaType.thawIndex)!
      const bytes = Buffer.from(
        await (await fetch(`${url}/v2/${repo}/blobs/${index.digest}`)).arrayBuffer(),
      )
      return parseFsIndex(bytes, { digest: index.digest as Digest })
    }
    // The same base layer in two images converts to one streaming blob.
    expect((await newest('apps/other', other.digest)).blobs[0]!.digest).toBe(
      (await newest('apps/gen', app.digest)).blobs[0]!.digest,
    )

    const relayout = async (generation: number, paths: string[]) => {
      const entries = paths.map((path) => ({ path, t: 1, ranges: [] }))
      const body = JSON.stringify({
        version: 1,
        subject: app.digest,
        workload: 'w',
        runs: 1,
        entries,
      })
      await expectStatus(
        await fetch(`${url}/v2/apps/gen/_thaw/profiles/${app.digest}`, { method: 'POST', body }),
        201,
      )
      await waitForConversion(
        url,
        'apps/gen',
        app.digest,
        (s) => s.generation === generation && s.state === 'converted',
      )
      return newest('apps/gen', app.digest)
    }
    const readAll = async (root: string) => {
      const out = await runReader(
        'sha256sum',
        files.map((f) => join(root, f.name)),
      )
      const sums = out.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0])
      expect(sums).toEqual(files.map((f) => sha256(f.content)))
    }

    const genN = await relayout(1, ['/f010', '/f090'])
    const dir = await tmpDir('thaw-generations-')
    const mounts = await createImageMounts({
      edges: [url],
      cacheDir: join(dir, 'cache'),
      mountRoot: join(dir, 'mnt'),
      cacheBytes: 1 << 30,
      background: false,
    })
    open.push(mounts)
    const first = await mounts.acquire(`${address}/apps/gen:v1`, { replay: false })
    await readAll(first.root)
    await first.release()

    // Generation N+1 moves one more file of the base layer.
    const genNext = await relayout(2, ['/f010', '/f090', '/f130'])
    const [base, next] = [genN.blobs[0]!, genNext.blobs[0]!]
    expect(next.digest).not.toBe(base.digest)
    expect(genNext.blobs[1]!.digest).toBe(genN.blobs[1]!.digest) // the app layer did not change: the same blob
    const cached = new Set(base.frames.map((f) => f.digest))
    const moved = next.frames.filter((f) => !cached.has(f.digest))
    expect(moved.length).toBeLessThan(next.frames.length / 2)

    const before = lines.length
    const second = await mounts.acquire(`${address}/apps/gen:v1`, { replay: false })
    await readAll(second.root)
    const served = servedBlobs(lines.slice(before))
    // Only the moved frames crossed the network; the rest came from the cache of generation N.
    expect(served.get(next.digest)).toBe(moved.reduce((n, f) => n + f.clen, 0))
    expect(served.has(genNext.blobs[1]!.digest)).toBe(false)
    const stats = mounts.mounted()[0]!.loader.stats
    expect(stats.copied).toBe(next.frames.length - moved.length)
    console.log(
      `generation 2 of a ${files.length}-file base layer: ${moved.length} of ${next.frames.length} frames fetched (${served.get(next.digest)} of ${next.size} bytes), ${stats.copied} copied from generation 1`,
    )
    await second.release()
  })
})
