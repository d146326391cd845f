import { formatImageReference, parseImageReference } from '../../runtime/oci/reference.ts'
import { pullImage } from '../../runtime/oci/remote/image-transfer.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../runtime/oci/remote/registry-client.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import type { Descriptor } from '../../runtime/oci/schemas.ts'
import { buildAppImage, readAppSource, type AppSource } from './build-app-image.ts'
import { DeployError } from './errors.ts'
import { appUrl, deployRevision, functionUrl } from './host-admin.ts'
import { pushAppImage, type PushEvent } from './push-app-image.ts'
import { waitForStreamingArtifact } from './wait-for-artifact.ts'

/** Where `thaw edge` listens by default. */
export const DEFAULT_REGISTRY = 'http://127.0.0.1:5000'
/** The bases `thaw base` pushes, by app kind. */
export const DEFAULT_BASES = {
  node: 'thaw/node:latest',
  'custom-handler': 'thaw/debian:latest',
} as const

export interface DeployOptions {
  /** Registry (edge) URL. Default: the registry host of `image`, else DEFAULT_REGISTRY. */
  registry?: string
  /** The app folder to build. Without it, `image` is deployed as it is (pushed by any client). */
  appDir?: string
  /** Where to push (`repo[:tag]`; default `apps/<name>:latest`), or the image to deploy. */
  image?: string
  /** The base image on the same registry (default by kind: DEFAULT_BASES). */
  base?: string
  /** App name (default: package.json name or the folder name). */
  name?: string
  /**
   * Deploy a new revision of the app to this host: `settings` merge into the app's current
   * ones, `unset` removes some; the rest (other settings, keys, limits) carries over.
   */
  host?: { url: string; masterKey: string; settings?: Record<string, string>; unset?: string[] }
  /** Wait for the streaming artifact (default true), at most `waitTimeoutMs` (default 120 s). */
  wait?: boolean
  waitTimeoutMs?: number
  /** Entries' mtime in the app layer (default 0). */
  mtime?: number
  /** Registry credentials (Basic, or to get Bearer tokens); anonymous without. */
  credentials?: { username: string; password: string }
  /** A client to use (not closed); else one is made for `registry` and closed. */
  client?: RegistryClient
  onEvent?: (event: DeployEvent) => void
  signal?: AbortSignal
}

export type DeployEvent =
  | { type: 'built'; source: AppSource; base: string; layer: Descriptor; digest: Digest }
  | { type: 'push'; progress: PushEvent }
  | { type: 'pushed'; reference: string; uploaded: Descriptor[]; reused: Descriptor[] }
  | { type: 'artifact'; state: string }
  | {
      type: 'host'
      created: boolean
      /** The app's new revision, live on the host. */
      revision: number
      /** False when it runs as the one before (same image and settings): its nodes were kept. */
      restarted: boolean
      app: string
      url: string
      /** The functions the revision's first node loaded, with their URLs by path. */
      functions: DeployedFunction[]
    }

export interface DeployedFunction {
  name: string
  methods: string[] | null
  url: string
}

export interface DeployResult {
  name: string
  repository: string
  digest: Digest
  /** `<registry host>/<repository>@<digest>`: what the host is given. */
  reference: string
  /** Blobs uploaded and reused; empty when an existing image was deployed by reference. */
  uploaded: Descriptor[]
  reused: Descriptor[]
  artifact?: Digest
  /** With a host: where the app's functions answer (`<host>/<name>/api/`). */
  url?: string
  /** With a host: the revision now live, and its functions. */
  revision?: number
  functions?: DeployedFunction[]
}

/**
 * `thaw deploy`: builds the app folder into an image on its base (build-app-image.ts), pushes it
 * (push-app-image.ts: base layers mounted, not re-sent), waits for the streaming artifact
 * (wait-for-artifact.ts), and deploys it to a host as the app's new revision, which the host
 * starts and health-checks before it takes traffic (host-admin.ts deployRevision). Without
 * `appDir`, deploys `image` as it is: resolves it to a digest, waits, tells the host.
 *
 * @example
 *   const r = await deployApp({ appDir: 'hello', registry: 'http://127.0.0.1:5000',
 *     host: { url: 'http://127.0.0.1:7071', masterKey } })
 *   console.log(r.reference, r.url)
 */
export async function deployApp(o: DeployOptions): Promise<DeployResult> {
  const target = o.image ? parseImageReference(o.image) : undefined
  const registry = o.registry ?? (target?.registry ? `http://${target.registry}` : DEFAULT_REGISTRY)
  const client = o.client ?? createRegistryClient({ registry, credentials: o.credentials })
  try {
    const pushed = o.appDir ? await buildAndPush(o, client) : await resolveExisting(o, client)
    const { repository, digest } = pushed
    const reference = formatImageReference({
      registry: client.registry.host,
      repository,
      tag: undefined,
      digest,
    })
    const result: DeployResult = { ...pushed, reference }
    if (o.wait !== false) {
      const ready = await waitForStreamingArtifact({
        client,
        repository,
        manifest: digest,
        timeoutMs: o.waitTimeoutMs,
        signal: o.signal,
        onState: (state) => o.onEvent?.({ type: 'artifact', state }),
      })
      result.artifact = ready.artifact
    }
    if (o.host) {
      const answer = await deployRevision(
        o.host.url,
        o.host.masterKey,
        pushed.name,
        { image: reference, settings: o.host.settings, unset: o.host.unset },
        { signal: o.signal },
      )
      const functions = (answer.revision.functions ?? []).map((f) => ({
        name: f.name,
        methods: f.methods,
        url: functionUrl(o.host!.url, pushed.name, f),
      }))
      Object.assign(result, {
        url: appUrl(o.host.url, pushed.name),
        revision: answer.revision.number,
        functions,
      })
      o.onEvent?.({
        type: 'host',
        created: answer.created,
        revision: answer.revision.number,
        restarted: answer.restarted,
        app: pushed.name,
        url: result.url!,
        functions,
      })
    }
    return result
  } finally {
    if (!o.client) await client.close()
  }
}

type Pushed = Omit<DeployResult, 'reference' | 'artifact' | 'url'>

async function buildAndPush(o: DeployOptions, client: RegistryClient): Promise<Pushed> {
  const source = await readAppSource(o.appDir!)
  const name = o.name ?? source.name
  const baseRef = parseImageReference(o.base ?? DEFAULT_BASES[source.kind])
  if (baseRef.registry && baseRef.registry !== client.registry.host) {
    throw new DeployError(
      'DEPLOY_OPTIONS_INVALID',
      `the base ${o.base} must be on the registry deployed to (${client.registry.host})`,
    )
  }
  const base = await pullImage(client, baseRef.repository, baseRef.digest ?? baseRef.tag!, {
    signal: o.signal,
  }).catch((err) => {
    if (
      (err as { code?: string }).code === 'MANIFEST_UNKNOWN' ||
      (err as { code?: string }).code === 'NAME_UNKNOWN'
    ) {
      throw new DeployError(
        'DEPLOY_OPTIONS_INVALID',
        `the base image ${formatImageReference(baseRef)} is not in ${client.registry.origin}: push one with "thaw base ${source.kind === 'node' ? 'node' : 'debian'} --registry ${client.registry.origin}", or pass --base`,
        { cause: err },
      )
    }
    throw err
  })
  const built = await buildAppImage(base, source, { name, mtime: o.mtime })
  o.onEvent?.({
    type: 'built',
    source,
    base: formatImageReference(baseRef),
    layer: built.layer.descriptor,
    digest: built.image.digest,
  })
  const target = o.image ? parseImageReference(o.image) : undefined
  const repository = target?.repository ?? `apps/${name}`
  const tag = target?.tag ?? 'latest'
  const result = await pushAppImage(client, repository, tag, built.image, {
    mountFrom: baseRef.repository,
    signal: o.signal,
    onProgress: (progress) => o.onEvent?.({ type: 'push', progress }),
  })
  o.onEvent?.({
    type: 'pushed',
    reference: `${client.registry.host}/${repository}:${tag}`,
    uploaded: result.uploaded,
    reused: result.reused,
  })
  return {
    name,
    repository,
    digest: result.digest,
    uploaded: result.uploaded,
    reused: result.reused,
  }
}

async function resolveExisting(o: DeployOptions, client: RegistryClient): Promise<Pushed> {
  if (!o.image || !o.name) {
    throw new DeployError(
      'DEPLOY_OPTIONS_INVALID',
      'without an app folder, give the image to deploy and the app name (--image REF --name APP)',
    )
  }
  const ref = parseImageReference(o.image)
  const head = await client.headManifest(ref.repository, ref.digest ?? ref.tag!, {
    signal: o.signal,
  })
  if (!head) {
    throw new DeployError(
      'DEPLOY_OPTIONS_INVALID',
      `${o.image} is not in ${client.registry.origin}`,
    )
  }
  if (ref.digest && head.digest !== ref.digest) {
    throw new DeployError('DEPLOY_OPTIONS_INVALID', `${o.image}: the registry has ${head.digest}`)
  }
  return { name: o.name, repository: ref.repository, digest: head.digest, uploaded: [], reused: [] }
}
