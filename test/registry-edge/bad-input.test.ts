import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkStore } from '../../registry-edge/store/check-store.ts'
import { pushBlob, pushImage, sha256, startTestEdge } from '../support/edge-client.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

let url: string
let store: string
let image: Awaited<ReturnType<typeof pushImage>>
const layer = randomBytes(500)

beforeAll(async () => {
  ;({ url, store } = await startTestEdge())
  image = await pushImage(url, 'apps/ok', 'v1', [layer])
})

/** Every file the store makes visible (blobs and links), to show a bad request stored nothing. */
async function visibleFiles(): Promise<string[]> {
  const list = async (dir: string) =>
    (await readdir(join(store, dir), { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
  return [...(await list('blobs')), ...(await list('repositories'))].sort()
}

let sessionsOpened = 0
async function session(repo = 'apps/ok'): Promise<string> {
  sessionsOpened++
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  return new URL(res.headers.get('location')!, url).pathname
}

/** A request sent with its path exactly as written (fetch would normalize it). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/`, { path, method: 'GET' }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject).end()
  })
}

const manifestWith = (over: Record<string, unknown>) => JSON.stringify({ ...image.manifest, ...over })
const put = (path: string, body: string | Uint8Array, type = OCI_MANIFEST) =>
  fetch(`${url}${path}`, { method: 'PUT', body, headers: { 'content-type': type } })
const wrongDigest = sha256('something else')
const missing = sha256('missing blob')

interface Case {
  name: string
  /** Runs before the snapshot of the store (what the bad request needs, e.g. a session). */
  prepare?: () => Promise<string>
  send: (prepared: string) => Promise<Response | { status: number; body: string }>
  status: number
  code: string
}

const cases: Case[] = [
  // Blob uploads
  { name: 'monolithic upload whose content does not match ?digest', send: () => fetch(`${url}/v2/apps/ok/blobs/uploads/?digest=${wrongDigest}`, { method: 'POST', body: randomBytes(10) }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'PUT closing a session with the wrong digest', send: async () => { const s = await session(); await fetch(`${url}${s}`, { method: 'PATCH', body: randomBytes(10) }); return fetch(`${url}${s}?digest=${wrongDigest}`, { method: 'PUT' }) }, status: 400, code: 'DIGEST_INVALID' },
  { name: 'digest that is not sha256:<64 hex>', send: () => fetch(`${url}/v2/apps/ok/blobs/uploads/?digest=sha256:abc`, { method: 'POST', body: 'x' }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'digest with an algorithm thaw does not take', send: () => fetch(`${url}/v2/apps/ok/blobs/uploads/?digest=sha512:${'a'.repeat(128)}`, { method: 'POST', body: 'x' }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'PUT closing a session without ?digest', send: async () => fetch(`${url}${await session()}`, { method: 'PUT' }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'chunk whose Content-Length disagrees with its Content-Range', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': '0-19' } }), status: 400, code: 'SIZE_INVALID' },
  { name: 'chunk that does not start at the session offset', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': '5-14' } }), status: 416, code: 'RANGE_INVALID' },
  // Content-Range on a chunk must be `<start>-<end>` (spec: ^[0-9]+-[0-9]+$), else 416
  { name: 'Content-Range that is not numbers', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': 'ten-twenty' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range with a bytes unit and total (a response header, not the spec form)', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': 'bytes 0-9/10' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range written as a Range request', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': 'bytes=0-9' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range with a total', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': '0-9/*' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range without its end', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': '0-' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range with a negative start', send: async () => fetch(`${url}${await session()}`, { method: 'PATCH', body: randomBytes(10), headers: { 'content-range': '-1-8' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range on the closing PUT that is not the spec form', send: async () => fetch(`${url}${await session()}?digest=${wrongDigest}`, { method: 'PUT', body: randomBytes(10), headers: { 'content-range': 'bytes 0-9/10' } }), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'upload session used after completion', prepare: async () => { const s = await session(); await fetch(`${url}${s}?digest=${sha256('')}`, { method: 'PUT' }); return s }, send: (s) => fetch(`${url}${s}`, { method: 'PATCH', body: 'more' }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'upload session finished twice', prepare: async () => { const s = await session(); await fetch(`${url}${s}?digest=${sha256('')}`, { method: 'PUT' }); return s }, send: (s) => fetch(`${url}${s}?digest=${sha256('')}`, { method: 'PUT' }), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'upload session of another repository', send: async () => fetch(`${url}${(await session('apps/other')).replace('apps/other', 'apps/ok')}`), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'upload id that is not one the edge made (path-like)', send: () => fetch(`${url}/v2/apps/ok/blobs/uploads/..%2F..%2Fblobs`), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  // Manifests
  { name: 'manifest that is not JSON', send: () => put('/v2/apps/ok/manifests/bad', '{not json'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest missing its layers', send: () => put('/v2/apps/ok/manifests/bad', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: image.manifest.config })), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest with schemaVersion 1', send: () => put('/v2/apps/ok/manifests/bad', manifestWith({ schemaVersion: 1 })), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest whose mediaType disagrees with Content-Type', send: () => put('/v2/apps/ok/manifests/bad', manifestWith({}), OCI_INDEX), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest larger than 4 MiB', send: () => put('/v2/apps/ok/manifests/bad', manifestWith({ annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } })), status: 413, code: 'MANIFEST_INVALID' },
  { name: 'manifest referencing a blob the repository lacks', send: () => put('/v2/apps/ok/manifests/bad', manifestWith({ layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: missing, size: 5 }] })), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest referencing a blob only another repository has', send: () => put('/v2/apps/elsewhere/manifests/bad', manifestWith({})), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest with a layer size that disagrees with the blob', send: () => put('/v2/apps/ok/manifests/bad', manifestWith({ layers: [{ ...image.manifest.layers[0], size: 499 }] })), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'index referencing a manifest the repository lacks', send: () => put('/v2/apps/ok/manifests/bad', JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: missing, size: 10 }] }), OCI_INDEX), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest PUT by a digest that is not its own', send: () => put(`/v2/apps/ok/manifests/${wrongDigest}`, manifestWith({})), status: 400, code: 'DIGEST_INVALID' },
  // Names, tags and paths
  { name: 'repository name with capitals', send: () => fetch(`${url}/v2/Apps/ok/manifests/v1`), status: 400, code: 'NAME_INVALID' },
  { name: 'repository name with an empty component', send: () => fetch(`${url}/v2/apps//ok/manifests/v1`), status: 400, code: 'NAME_INVALID' },
  { name: 'repository name ending in a separator', send: () => fetch(`${url}/v2/apps-/blobs/${image.configDigest}`), status: 400, code: 'NAME_INVALID' },
  { name: 'repository name longer than 255', send: () => fetch(`${url}/v2/${'a'.repeat(256)}/tags/list`), status: 400, code: 'NAME_INVALID' },
  { name: 'encoded ../ in the repository name', send: () => fetch(`${url}/v2/..%2F..%2Fetc/manifests/v1`), status: 400, code: 'NAME_INVALID' },
  { name: 'encoded slash hiding a traversal in a pushed name', send: () => put('/v2/apps%2F..%2F..%2Ftmp/manifests/v1', manifestWith({})), status: 400, code: 'NAME_INVALID' },
  { name: 'raw ../ segments (resolved by URL parsing before routing: never reach the store)', send: () => rawGet('/v2/../../etc/passwd/manifests/v1'), status: 404, code: 'UNSUPPORTED' },
  { name: 'tag starting with a dot', send: () => put('/v2/apps/ok/manifests/.hidden', manifestWith({})), status: 400, code: 'TAG_INVALID' },
  { name: 'encoded slashes in a tag', send: () => put('/v2/apps/ok/manifests/..%2F..%2Fx', manifestWith({})), status: 400, code: 'TAG_INVALID' },
  { name: 'tag longer than 128 characters', send: () => put(`/v2/apps/ok/manifests/${'t'.repeat(129)}`, manifestWith({})), status: 400, code: 'TAG_INVALID' },
  // A pull by a reference that cannot be a tag asks for a manifest that is not there (the spec's conformance suite pulls `.INVALID`).
  { name: 'manifest GET by a tag outside the grammar', send: () => fetch(`${url}/v2/apps/ok/manifests/.INVALID`), status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'manifest GET by a malformed digest', send: () => fetch(`${url}/v2/apps/ok/manifests/sha256:zz`), status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob GET with a malformed digest', send: () => fetch(`${url}/v2/apps/ok/blobs/sha256:zz`), status: 400, code: 'DIGEST_INVALID' },
  { name: 'referrers of a malformed digest', send: () => fetch(`${url}/v2/apps/ok/referrers/latest`), status: 400, code: 'DIGEST_INVALID' },
  { name: 'method the endpoint does not have', send: () => fetch(`${url}/v2/apps/ok/tags/list`, { method: 'DELETE' }), status: 405, code: 'UNSUPPORTED' },
  { name: 'path that is no endpoint', send: () => fetch(`${url}/v2/apps/ok/nothing`), status: 404, code: 'UNSUPPORTED' },
]

describe('bad input', () => {
  it.each(cases)('$name → $status $code, nothing stored', async ({ prepare, send, status, code }) => {
    const prepared = prepare ? await prepare() : ''
    const before = await visibleFiles()
    const res = await send(prepared)
    expect(res.status).toBe(status)
    const text = 'text' in res ? await res.text() : res.body
    const body = JSON.parse(text) as { errors: { code: string; message: string }[] }
    expect(body.errors[0]!.code).toBe(code)
    expect(body.errors[0]!.message.length).toBeGreaterThan(5)
    expect(await visibleFiles()).toEqual(before)
  })

  it('answers HEAD of a manifest by a tag outside the grammar 404, as a manifest that is not there', async () => {
    const res = await fetch(`${url}/v2/apps/ok/manifests/.INVALID`, { method: 'HEAD' })
    expect(res.status).toBe(404)
  })

  it('leaves a consistent store and no stray temp files behind', async () => {
    expect(await checkStore(store)).toEqual([])
    expect(await readdir(join(store, 'tmp'))).toEqual([])
    // Sessions that failed verification were dropped with their bytes.
    const digestFailures = await readdir(join(store, 'uploads'))
    expect(digestFailures.length).toBeLessThanOrEqual(sessionsOpened) // opened by the cases above
    await pushBlob(url, 'apps/ok', randomBytes(10)) // and the edge still takes good input
  })
})
