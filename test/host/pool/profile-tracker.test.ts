import { describe, expect, it } from 'vitest'
import { silentHostLogger } from '../../../host/log/host-logger.ts'
import type { MountLease } from '../../../host/mount/image-mounts.ts'
import { createProfileTracker } from '../../../host/pool/profile-tracker.ts'
import type { Digest } from '../../../runtime/oci/digest.ts'
import type { Profile } from '../../../runtime/profile/profile.ts'
import { pushTarImage, waitForConversion } from '../../support/convert-image.ts'
import { startTestEdge } from '../../support/edge-client.ts'

const LAYERS = [
  [
    { name: 'a', content: 'a'.repeat(3000) },
    { name: 'b', content: 'b'.repeat(3000) },
  ],
]

/** A lease of `manifest` whose recording holds `profile` (what a mount records is tested apart). */
function lease(reference: string, manifest: Digest, profile: Profile): MountLease {
  return {
    root: '/nonexistent',
    image: { reference, repository: 'apps/t', manifest, artifact: manifest, config: {} as never },
    timings: { resolveMs: 0, mountMs: 0, prefetchMs: 0 },
    replayed: false,
    recording: true,
    startEnded: Promise.resolve('started'),
    fetched: () => ({ requests: 0, bytes: 0 }),
    started: () => profile,
    release: async () => {},
  }
}

describe('profile tracker', () => {
  it('records each workload of an image once and uploads it under its name; the edge keeps them apart', async () => {
    const { url } = await startTestEdge({ conversion: {} })
    const image = await pushTarImage(url, 'apps/t', 'v1', LAYERS)
    await waitForConversion(url, 'apps/t', image.digest)
    const manifest = image.digest as Digest
    const reference = `${new URL(url).host}/apps/t:v1`
    const tracker = createProfileTracker({ logger: silentHostLogger, edgeFor: () => url })
    const start = (workload: string, path: string) => {
      const options = tracker.acquireOptions(reference, workload)
      const recorded: Profile = {
        version: 1,
        subject: manifest,
        workload,
        runs: 1,
        entries: [{ path, t: 1, ranges: [] }],
      }
      const l = lease(reference, manifest, recorded)
      tracker.acquired(reference, l, options)
      if (options.record) tracker.firstResponse(reference, l)
      return options
    }
    expect(start('app', '/a')).toMatchObject({ record: true, workload: 'app' })
    expect(start('app/f1', '/b')).toMatchObject({ record: true, workload: 'app/f1' })
    await tracker.settled()
    // Uploaded: later cold starts of either workload replay and do not record again.
    expect(tracker.acquireOptions(reference, 'app')).toMatchObject({ record: false, replay: true })
    expect(tracker.acquireOptions(reference, 'app/f1')).toMatchObject({ record: false })
    expect(tracker.acquireOptions(reference, 'app/f2')).toMatchObject({ record: true })
    expect(tracker.states().map((s) => [s.workload, s.state])).toEqual([
      ['app', 'uploaded'],
      ['app/f1', 'uploaded'],
      ['app/f2', 'none'],
    ])
    for (const [workload, path] of [
      ['app', '/a'],
      ['app/f1', '/b'],
    ]) {
      const res = await fetch(
        `${url}/v2/apps/t/_thaw/profiles/${manifest}?workload=${encodeURIComponent(workload!)}`,
      )
      expect(res.status).toBe(200)
      expect(((await res.json()) as Profile).entries.map((e) => e.path)).toEqual([path])
    }
    await tracker.close()
  })

  it('with profiles off, records nothing and replays nothing', async () => {
    const tracker = createProfileTracker({ logger: silentHostLogger, enabled: false })
    expect(tracker.acquireOptions('r/apps/t:v1', 'app')).toEqual({
      record: false,
      replay: false,
      workload: 'app',
    })
    expect(tracker.states()).toEqual([])
    await tracker.close()
  })
})
