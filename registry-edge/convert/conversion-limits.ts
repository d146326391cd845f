import { ThawError } from '../../runtime/errors.ts'
import {
  MediaType,
  layerCompression,
  type ImageConfig,
  type ImageManifest,
  type LayerCompression,
} from '../../runtime/oci/index.ts'

/** What the edge agrees to convert (config `conversion`); anything else is skipped with a reason. */
export interface ConversionLimits {
  /** `os/architecture[/variant]` pairs; default linux/amd64 and linux/arm64. */
  platforms: string[]
  maxLayers: number
  maxLayerBytes: number
  maxImageBytes: number
  /** Accept character and block device entries (default false). */
  allowDevices: boolean
}

export const DEFAULT_CONVERSION_LIMITS: ConversionLimits = {
  platforms: ['linux/amd64', 'linux/arm64'],
  maxLayers: 128,
  maxLayerBytes: 4 * 2 ** 30,
  maxImageBytes: 16 * 2 ** 30,
  allowDevices: false,
}

export interface CheckedLayer {
  digest: ImageManifest['layers'][number]['digest']
  size: number
  compression: LayerCompression
}

/**
 * The checks run before any conversion work: platform, media types, layer count and sizes, and
 * that the config's DiffIDs match the layers one to one. Throws a user-fault ThawError whose code
 * and message become the recorded reason. (Tar content is checked while converting, entry by
 * entry, by the format's TarSafety: it cannot be checked without reading the layers.)
 */
export function checkImage(
  manifest: ImageManifest,
  config: ImageConfig,
  limits: ConversionLimits,
): CheckedLayer[] {
  const configTypes: string[] = [MediaType.ociConfig, MediaType.dockerConfig]
  if (!configTypes.includes(manifest.config.mediaType)) {
    throw skip(
      'MEDIA_TYPE_UNSUPPORTED',
      `config media type ${manifest.config.mediaType} is not an image config`,
    )
  }
  const platform = [config.os, config.architecture, config.variant].filter(Boolean).join('/')
  const allowed = limits.platforms.some(
    (p) => p === platform || p === `${config.os}/${config.architecture}`,
  )
  if (!allowed) {
    throw skip(
      'PLATFORM_UNSUPPORTED',
      `platform ${platform} is not one of ${limits.platforms.join(', ')}`,
    )
  }
  if (manifest.layers.length > limits.maxLayers) {
    throw skip(
      'TOO_MANY_LAYERS',
      `${manifest.layers.length} layers, more than the limit of ${limits.maxLayers}`,
    )
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw skip(
      'CONFIG_INVALID',
      `config has ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`,
    )
  }
  let total = 0
  return manifest.layers.map((layer, i) => {
    const compression = layerCompression(layer.mediaType)
    if (compression === undefined) {
      throw skip(
        'MEDIA_TYPE_UNSUPPORTED',
        `layer ${i} has media type ${layer.mediaType}, not a tar layer thaw reads`,
      )
    }
    if (layer.size > limits.maxLayerBytes) {
      throw skip(
        'LAYER_TOO_LARGE',
        `layer ${i} is ${layer.size} bytes, over the limit of ${limits.maxLayerBytes}`,
      )
    }
    total += layer.size
    if (total > limits.maxImageBytes) {
      throw skip(
        'IMAGE_TOO_LARGE',
        `layers add up to more than the limit of ${limits.maxImageBytes} bytes`,
      )
    }
    return { digest: layer.digest, size: layer.size, compression }
  })
}

function skip(code: string, message: string): ThawError {
  return new ThawError(code, message, { fault: 'user' })
}
