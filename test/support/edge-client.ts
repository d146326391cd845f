import { createHash } from 'node:crypto'
import { silentLogger } from '../../registry-edge/observability/edge-logger.ts'
import {
  startRegistryEdge,
  type RunningRegistryEdge,
  type StartRegistryEdgeOptions,
} from '../../registry-edge/server.ts'
import { onCleanup } from './cleanup.ts'
import { tmpDir } from './tmp.ts'

/**
 * Small fetch-based helpers for registry tests: push blobs (monolithic, chunked, or as skopeo does
 * it) and manifests to any registry (the edge or distribution), and start edges on port 0 that are
 * closed when the test file ends.
 */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export type UploadMode = 'monolithic' | 'post-put' | 'chunked'

/**
 * Pushes a blob. `monolithic`: one POST ?digest= (OCI end-4b); `post-put`: POST then PUT with the
 * body (what distribution 2.8 supports); `chunked`: POST, PATCHes of `chunkSize` bytes with
 * Content-Range, then PUT ?digest=.
 */
export async function pushBlob(
  url: string,
  repo: string,
  data: Uint8Array,
  mode: UploadMode = 'post-put',
  chunkSize = 64 * 1024,
  headers: Record<string, string> = {},
): Promise<string> {
  const digest = sha256(data)
  if (mode === 'monolithic') {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: data,
      headers: { 'content-type': 'application/octet-stream', ...headers },
    })
    await expectStatus(res, 201)
    return digest
  }
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers })
  await expectStatus(post, 202)
  let location = new URL(post.headers.get('location')!, url)
  if (mode === 'chunked') {
    for (let at = 0; at < data.length; at += chunkSize) {
      const chunk = data.subarray(at, Math.min(data.length, at + chunkSize))
      const res = await fetch(location, {
        method: 'PATCH',
        body: chunk,
        headers: {
          'content-range': `${at}-${at + chunk.length - 1}`,
          'content-type': 'application/octet-stream',
          ...headers,
        },
      })
      await expectStatus(res, 202)
      location = new URL(res.headers.get('location')!, url)
    }
  }
  location.searchParams.set('digest', digest)
  const put = await fetch(location, {
    method: 'PUT',
    body: mode === 'chunked' ? undefined : data,
    headers: { 'content-type': 'application/octet-stream', ...headers },
  })
  await expectStatus(put, 201)
  return digest
}

export async function pushManifest(
  url: string,
  repo: string,
  ref: string,
  manifest: unknown,
  mediaType = 'application/vnd.oci.image.manifest.v1+json',
  headers: Record<string, string> = {},
): Promise<Response> {
  const body = typeof manifest === 'string' ? manifest : JSON.stringify(manifest)
  return fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body,
    headers: { 'content-type': mediaType, ...headers },
  })
}

/** A small image (config + layers) pushed to `repo:tag`; returns its parts. */
export async function pushImage(
  url: string,
  repo: string,
  tag: string,
  layers: Uint8Array[],
  mode: UploadMode = 'post-put',
) {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  )
  const configDigest = await pushBlob(url, repo, config, mode)
  const layerDescriptors = []
  for (const layer of layers) {
    layerDescriptors.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: await pushBlob(url, repo, layer, mode),
      size: layer.length,
    })
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: layerDescriptors,
  }
  const res = await pushManifest(url, repo, tag, manifest)
  await expectStatus(res, 201)
  const bytes = Buffer.from(JSON.stringify(manifest))
  return { manifest, bytes, digest: sha256(bytes), configDigest }
}

export async function expectStatus(res: Response, status: number): Promise<void> {
  if (res.status !== status) {
    throw new Error(
      `${res.url}: expected ${status}, got ${res.status}: ${(await res.text()).slice(0, 500)}`,
    )
  }
}

/** The `errors[0].code` of a spec error body. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] }
  return body.errors?.[0]?.code
}

/** An edge on 127.0.0.1:0 with a fresh store, closed when the test file ends. */
export async function startTestEdge(
  options: Partial<StartRegistryEdgeOptions> = {},
): Promise<RunningRegistryEdge & { store: string }> {
  const store = options.store ?? (await tmpDir('thaw-edge-store-'))
  const running = await startRegistryEdge({ logger: silentLogger, ...options, store })
  onCleanup('servers', () => running.close())
  return Object.assign(running, { store })
}
