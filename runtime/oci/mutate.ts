import { sha256Of } from './digest.ts'
import { OciError } from './errors.ts'
import { createImage, type Image } from './image.ts'
import type { Layer } from './layer.ts'
import { MediaType } from './media-types.ts'
import type { Descriptor, ImageConfig } from './schemas.ts'

/** Changes to the runtime config that `appendLayer` makes with the layer (all optional). */
export interface ConfigChanges {
  /** Set variables: existing ones are replaced in place, new ones appended. */
  env?: Record<string, string>
  entrypoint?: string[]
  cmd?: string[]
  workingDir?: string
  user?: string
  /** Added to (or replacing) the base image's labels. */
  labels?: Record<string, string>
  /** The history entry's and the config's `created` time. Default: now. */
  created?: Date
  /** The history entry's `created_by`. Default `thaw append`. */
  createdBy?: string
}

/**
 * A new image: `base` with `layer` on top and the config changed (like `crane append` and
 * go-containerregistry's `mutate.Append`). The new config lists the layer's DiffID and gets a
 * history entry; the new manifest keeps the base's media type family, annotations and other
 * fields. `base` is not modified; the new image opens base blobs through `base`.
 *
 * A Docker v2 schema 2 base takes gzip layers only (Docker has no type for plain tar layers).
 */
export function appendLayer(base: Image, layer: Layer, changes: ConfigChanges = {}): Image {
  const docker = base.mediaType === MediaType.dockerManifest
  const descriptor: Descriptor = {
    ...layer.descriptor,
    mediaType: layerType(layer.descriptor.mediaType, docker),
  }
  const created = (changes.created ?? new Date()).toISOString()
  const config = changedConfig(base.config, changes, created)
  config.rootfs = {
    ...base.config.rootfs,
    diff_ids: [...base.config.rootfs.diff_ids, layer.diffId],
  }
  config.history = [
    ...(base.config.history ?? []),
    { created, created_by: changes.createdBy ?? 'thaw append', comment: layer.descriptor.digest },
  ]
  const configBytes = Buffer.from(JSON.stringify(config))
  const manifest = {
    ...base.manifest,
    config: { ...base.manifest.config, digest: sha256Of(configBytes), size: configBytes.length },
    layers: [...base.manifest.layers, descriptor],
  }
  return createImage({
    manifestBytes: Buffer.from(JSON.stringify(manifest)),
    mediaType: base.mediaType,
    configBytes,
    openBlob: (d, options) =>
      d.digest === descriptor.digest ? layer.open(options) : base.openBlob(d, options),
  })
}

function changedConfig(base: ImageConfig, changes: ConfigChanges, created: string): ImageConfig {
  const runtime = { ...base.config }
  if (changes.env) runtime.Env = mergeEnv(runtime.Env ?? [], changes.env)
  if (changes.entrypoint) runtime.Entrypoint = changes.entrypoint
  if (changes.cmd) runtime.Cmd = changes.cmd
  if (changes.workingDir !== undefined) runtime.WorkingDir = changes.workingDir
  if (changes.user !== undefined) runtime.User = changes.user
  if (changes.labels) runtime.Labels = { ...runtime.Labels, ...changes.labels }
  return { ...base, created, config: runtime }
}

/** Replaces variables in place, appends new ones. */
function mergeEnv(env: string[], set: Record<string, string>): string[] {
  for (const key of Object.keys(set)) {
    if (!key || key.includes('=')) {
      throw new OciError(
        'MANIFEST_INVALID',
        `invalid environment variable name ${JSON.stringify(key)}`,
      )
    }
  }
  const pending = new Map(Object.entries(set))
  const out = env.map((entry) => {
    const key = entry.split('=', 1)[0]!
    const value = pending.get(key)
    if (value === undefined) return entry
    pending.delete(key)
    return `${key}=${value}`
  })
  for (const [key, value] of pending) out.push(`${key}=${value}`)
  return out
}

function layerType(mediaType: string, docker: boolean): string {
  if (!docker) return mediaType
  if (mediaType === MediaType.ociLayerGzip || mediaType === MediaType.dockerLayerGzip)
    return MediaType.dockerLayerGzip
  throw new OciError('UNSUPPORTED', `a Docker image cannot take a ${mediaType} layer; use gzip`)
}
