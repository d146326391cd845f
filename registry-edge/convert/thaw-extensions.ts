import {
  MediaType,
  OciError,
  isDigest,
  parseManifest,
  type Digest,
} from '../../runtime/oci/index.ts'
import { PROFILE_LIMITS, parseProfile } from '../../runtime/profile/index.ts'
import { parseFsIndex } from '../../runtime/format/index.ts'
import type { EdgeExtension, ExtensionRequest } from '../edge-extension.ts'
import { blobResponse } from '../http/blob-response.ts'
import { jsonResponse } from '../http/http-errors.ts'
import { fileRangeStream } from '../store/file-range-stream.ts'
import { listArtifacts } from './artifact-store.ts'
import { readSmallBlob } from './backend-blobs.ts'
import type { BundleCache, CachedBundle } from './bundle-cache.ts'
import type { RegistryBackend } from '../backend/registry-backend.ts'
import { planBundle } from './bundle-plan.ts'
import type { ConvertOnAsk } from './convert-on-ask.ts'
import type { Converter } from './converter.ts'
import type { ProfileStore } from './profile-store.ts'
import { parseRepositorySettings, type RepositorySettingsStore } from './repository-settings.ts'

export interface ThawExtensionDeps {
  converter: Converter
  onAsk: ConvertOnAsk
  settings: RepositorySettingsStore
  profiles: ProfileStore
  bundles: BundleCache
}

/** The `_thaw` endpoints of runtime/artifact/thaw-api.ts: status, settings, profiles, bundle. */
export function thawExtensions(deps: ThawExtensionDeps): EdgeExtension[] {
  return [
    { name: 'status', handle: (r) => status(r, deps) },
    { name: 'settings', handle: (r) => settings(r, deps) },
    { name: 'profiles', handle: (r) => profiles(r, deps) },
    { name: 'bundle', handle: (r) => bundle(r, deps) },
  ]
}

async function status({ repository, subpath, request }: ExtensionRequest, deps: ThawExtensionDeps) {
  only(request, ['GET', 'HEAD'])
  const manifest = digestOf(subpath)
  // An image the edge has no record of (pushed straight to the upstream) is converted now.
  const found = await deps.onAsk.ask(repository, manifest)
  if (!found)
    throw new OciError('MANIFEST_UNKNOWN', `no conversion of ${manifest} in ${repository}`)
  return jsonResponse(found)
}

async function settings(
  { repository, subpath, request }: ExtensionRequest,
  deps: ThawExtensionDeps,
) {
  if (subpath !== '') throw new OciError('UNSUPPORTED', 'no such endpoint', { status: 404 })
  only(request, ['GET', 'HEAD', 'PUT'])
  if (request.method !== 'PUT') return jsonResponse(await deps.settings.get(repository))
  const body = await readBody(request, 64 * 1024)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(body))
  } catch {
    throw new OciError('UNSUPPORTED', 'settings must be JSON', { status: 400 })
  }
  return jsonResponse(await deps.settings.put(repository, parseRepositorySettings(value)))
}

async function profiles(req: ExtensionRequest, deps: ThawExtensionDeps) {
  const { repository, subpath, request, backend } = req
  only(request, ['GET', 'HEAD', 'POST'])
  const manifest = digestOf(subpath)
  if (request.method !== 'POST') {
    const workload = workloadOf(request)
    const merged = await deps.profiles.merged(repository, manifest, workload)
    if (!merged) {
      const of = workload === '' ? '' : ` for workload ${JSON.stringify(workload)}`
      throw new OciError('MANIFEST_UNKNOWN', `no profile of ${manifest}${of} in ${repository}`)
    }
    return new Response(request.method === 'HEAD' ? null : merged.bytes, {
      headers: { 'content-type': MediaType.thawProfile, 'docker-content-digest': merged.digest },
    })
  }
  const stored = await backend.getManifest(repository, { digest: manifest })
  if (!stored)
    throw new OciError('MANIFEST_UNKNOWN', `manifest ${manifest} is not in ${repository}`)
  const run = parseProfile(await readBody(request, PROFILE_LIMITS.bytes))
  if (run.subject !== manifest) {
    throw new OciError(
      'MANIFEST_INVALID',
      `the profile's subject is ${run.subject}, not ${manifest}`,
    )
  }
  const subject = { mediaType: stored.mediaType, digest: manifest, size: stored.bytes.length }
  const merged = await deps.profiles.add(repository, subject, run)
  // A new merged profile: re-lay the image out by it (a no-op when its artifact already has it).
  await deps.converter.request(repository, manifest)
  return jsonResponse({ profile: merged.digest, runs: merged.profile.runs }, 201)
}

async function bundle(req: ExtensionRequest, deps: ThawExtensionDeps) {
  const { repository, subpath, request, backend } = req
  only(request, ['GET', 'HEAD'])
  const built = await prepareBundle(
    { backend, profiles: deps.profiles, bundles: deps.bundles },
    repository,
    digestOf(subpath),
    { workload: workloadOf(request), signal: request.signal },
  )
  return blobResponse({
    request,
    digest: built.digest,
    size: built.size,
    contentType: MediaType.thawBundle,
    read: (range) => fileRangeStream(built.path, range, request.signal),
  })
}

/**
 * The prefetch bundle of an image's newest artifact and a workload's merged profile (the unnamed
 * default when the workload has none), built when missing. The edge calls it when a re-layout
 * finishes too, so the first replaying cold start finds it built.
 */
export async function prepareBundle(
  deps: { backend: RegistryBackend; profiles: ProfileStore; bundles: BundleCache },
  repository: string,
  manifest: Digest,
  o: { workload?: string; signal?: AbortSignal } = {},
): Promise<CachedBundle> {
  const { backend } = deps
  const { signal } = o
  const merged = await deps.profiles.forWorkload(repository, manifest, o.workload ?? '')
  if (!merged) throw new OciError('MANIFEST_UNKNOWN', `no profile of ${manifest} in ${repository}`)
  const [artifact] = await listArtifacts(backend, repository, manifest)
  if (!artifact) throw new OciError('MANIFEST_UNKNOWN', `no streaming artifact of ${manifest} yet`)
  const plan = async () => {
    const read = (digest: Digest, max: number) => readSmallBlob(backend, repository, digest, max)
    const indexBytes = await read(artifact.index.digest, 64 * 2 ** 20)
    const header = planBundle({
      artifact: artifact.digest,
      profile: merged.digest,
      // Record 0: the index the host will read (the binary one when there is one).
      indexBlob: artifact.binaryIndex ?? artifact.index,
      index: parseFsIndex(indexBytes, { digest: artifact.index.digest }),
      merged: merged.profile,
    })
    const image = await backend.getManifest(repository, { digest: manifest })
    const config = image && parseManifest(image.bytes, image.mediaType)
    if (config?.kind !== 'image') return header
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
    const imageConfig = await read(config.manifest.config.digest, 8 * 2 ** 20)
    const start = {
      artifact: b64(artifact.bytes),
      config: b64(artifact.configBytes),
      imageConfig: b64(imageConfig),
    }
    return { ...header, start }
  }
  return deps.bundles.get({ artifact: artifact.digest, profile: merged.digest }, plan, signal)
}

/** `?workload=` of a profiles or bundle request: the host's name of what ran ('' = the default). */
function workloadOf(request: Request): string {
  const workload = new URL(request.url).searchParams.get('workload') ?? ''
  if (workload.length > 256)
    throw new OciError('UNSUPPORTED', 'a workload name is at most 256 characters', { status: 400 })
  return workload
}

function digestOf(subpath: string): Digest {
  const value = subpath.replace(/^\//, '')
  if (!isDigest(value)) throw new OciError('DIGEST_INVALID', `"${value}" is not a sha256 digest`)
  return value
}

function only(request: Request, methods: string[]): void {
  if (!methods.includes(request.method)) {
    throw new OciError('UNSUPPORTED', `${request.method} is not supported on this endpoint`)
  }
}

/** The body, refused with 413 past `limit` bytes (declared or received) without reading further. */
async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new OciError('SIZE_INVALID', `body is larger than ${limit} bytes`, { status: 413 })
  const declared = Number(request.headers.get('content-length') ?? 0)
  if (declared > limit) throw tooLarge()
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of (request.body ?? []) as AsyncIterable<Uint8Array>) {
    total += chunk.length
    if (total > limit) throw tooLarge()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
