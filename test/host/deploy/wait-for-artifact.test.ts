import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { waitForStreamingArtifact } from '../../../host/deploy/wait-for-artifact.ts'
import { sha256Of } from '../../../runtime/oci/digest.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../runtime/oci/remote/registry-client.ts'

const manifest = sha256Of(Buffer.from('the image'))
const artifact = sha256Of(Buffer.from('the artifact'))
let server: Server | undefined
let client: RegistryClient | undefined

afterEach(async () => {
  await client?.close()
  await new Promise((r) => (server ? server.close(r) : r(undefined)))
  server = client = undefined
})

/** A fake edge: `answer(path, n)` gives the n-th answer (status, JSON body) for a path. */
async function fakeEdge(
  answer: (path: string, n: number) => [number, unknown],
): Promise<{ requests: string[] }> {
  const requests: string[] = []
  const counts = new Map<string, number>()
  server = createServer((req, res) => {
    const path = req.url!.split('?')[0]!
    requests.push(path)
    const n = (counts.get(path) ?? 0) + 1
    counts.set(path, n)
    const [status, body] = answer(path, n)
    const type = path.includes('/referrers/')
      ? 'application/vnd.oci.image.index.v1+json'
      : 'application/json'
    res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body))
  })
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
  client = createRegistryClient({
    registry: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    retry: { attempts: 1 },
  })
  return { requests }
}

const status = (state: string, extra: object = {}) => ({
  manifest,
  state,
  updatedAt: new Date().toISOString(),
  ...extra,
})
const unknown = { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'no conversion' }] }

describe('waitForStreamingArtifact', () => {
  it('polls the status endpoint through not-yet-known, pending and converting until converted, reporting each state once', async () => {
    const seq: Array<[number, unknown]> = [
      [404, unknown],
      [200, status('pending')],
      [200, status('converting')],
      [200, status('converting')],
      [200, status('converted', { artifact })],
    ]
    const { requests } = await fakeEdge((_p, n) => seq[Math.min(n, seq.length) - 1]!)
    const states: string[] = []
    const ready = await waitForStreamingArtifact({
      client: client!,
      repository: 'apps/hello',
      manifest,
      intervalMs: 5,
      onState: (s) => states.push(s),
    })
    expect(ready).toEqual({ artifact, via: 'status' })
    expect(states).toEqual(['pending', 'converting', 'converted'])
    expect(requests).toEqual(Array(5).fill(`/v2/apps/hello/_thaw/status/${manifest}`))
  })

  it.each([
    // [state, fault]
    ['failed', 'system'], // the edge broke
    ['skipped', 'user'], // the image is not convertible (e.g. a foreign platform)
  ])(
    'ends with ARTIFACT_FAILED and the edge’s reason when the conversion %s',
    async (state, fault) => {
      await fakeEdge(() => [
        200,
        status(state, { reason: 'layer 2 has a path outside the root', code: 'TAR_UNSAFE_PATH' }),
      ])
      const wait = waitForStreamingArtifact({
        client: client!,
        repository: 'apps/hello',
        manifest,
        intervalMs: 5,
      })
      await expect(wait).rejects.toMatchObject({
        code: 'ARTIFACT_FAILED',
        fault,
        message: expect.stringMatching(/outside the root \(TAR_UNSAFE_PATH\)/),
      })
    },
  )

  it('falls back to referrers with the streaming artifact type on an edge without the status endpoint', async () => {
    const { requests } = await fakeEdge((path, n) => {
      if (path.includes('/_thaw/'))
        return [404, { errors: [{ code: 'UNSUPPORTED', message: 'no thaw extension "status"' }] }]
      const manifests =
        n < 3
          ? []
          : [
              {
                mediaType: 'application/vnd.oci.image.manifest.v1+json',
                artifactType: 'application/vnd.thaw.profile.v1+json',
                digest: sha256Of(Buffer.from('p')),
                size: 1,
              },
              {
                mediaType: 'application/vnd.oci.image.manifest.v1+json',
                artifactType: 'application/vnd.thaw.streaming.v1',
                digest: artifact,
                size: 2,
              },
            ]
      return [
        200,
        { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests },
      ]
    })
    const ready = await waitForStreamingArtifact({
      client: client!,
      repository: 'apps/hello',
      manifest,
      intervalMs: 5,
    })
    expect(ready).toEqual({ artifact, via: 'referrers' })
    expect(requests.filter((p) => p.includes('/_thaw/'))).toHaveLength(1)
    expect(requests.filter((p) => p.includes('/referrers/'))).toHaveLength(3)
  })

  it('gives up after the timeout with ARTIFACT_TIMEOUT, saying the image is pushed and naming the last state', async () => {
    await fakeEdge(() => [200, status('converting')])
    const wait = waitForStreamingArtifact({
      client: client!,
      repository: 'apps/hello',
      manifest,
      intervalMs: 5,
      timeoutMs: 100,
    })
    const err = await wait.catch((e: Error) => e)
    expect(err).toMatchObject({ code: 'ARTIFACT_TIMEOUT' })
    expect((err as Error).message).toMatch(/image is pushed.*last state: converting.*--no-wait/)
  })

  it('stops at once when aborted', async () => {
    await fakeEdge(() => [200, status('converting')])
    const controller = new AbortController()
    const wait = waitForStreamingArtifact({
      client: client!,
      repository: 'apps/hello',
      manifest,
      intervalMs: 50,
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(new Error('stop')), 20)
    await expect(wait).rejects.toThrow('stop')
  })
})
