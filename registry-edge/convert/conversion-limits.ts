import { ThawError } from '../../runtime/errors.ts'
import type { ExpansionLimits, TarSafetyOptions } from '../../runtime/format/index.ts'
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
  /** Compressed sizes, as the manifest gives them: checked before anything is read. */
  maxLayerBytes: number
  maxImageBytes: number
  /**
   * Uncompressed (tar) sizes and tar entries, which only reading the layers tells: checked as
   * they are decompressed, and the conversion stops at the first byte or entry over a limit.
   */
  maxLayerUncompressedBytes: number
  maxImageUncompressedBytes: number
  maxLayerEntries: number
  maxImageEntries: number
  /**
   * Accept character and block device entries (default true). They are kept as metadata only: the
   * index records their type and device numbers (so `ls -l` and stat() show them), and nothing
   * can open one: the hosts mount images nodev (the FUSE mount and each node's overlay), a node has
   * its own /dev (a tmpfs, the OCI runtime's devices), and the conversion never creates a file.
   * Real base images have them (Debian's has /dev/console, /dev/null, /dev/ptmx …); false refuses
   * such images (TAR_DEVICE_NOT_ALLOWED).
   */
  allowDevices: boolean
}

/**
 * Compressed sizes bound what a push stores; what a layer expands to is bounded on its own (a
 * 330 KB zstd layer holds 10 GiB of zeros):
 * - Uncompressed bytes: 10 GiB an image, about what AWS Lambda accepts for a container image
 *   (10 GB, all layers uncompressed); a layer may use all of it. Memory does not depend on it (the layers
 *   are decompressed as they are read), but time does: a worker converted 10 GiB of zeros in
 *   25 to 52 s here (2 shared cores), so one push asks for about a minute of a worker at most.
 * - Entries: 200 000 an image (a layer may hold them all), what the hosts' index cache holds
 *   (host/mount/index-cache.ts, about four images of 50 000 files); the Debian rootfs of the
 *   format tests has 6 768. Each entry costs the converting edge about 1.1 KB until the image's
 *   index is written (1 000 000 empty files: 1.28 GB peak), so this bounds that at about 220 MB.
 */
export const DEFAULT_CONVERSION_LIMITS: ConversionLimits = {
  platforms: ['linux/amd64', 'linux/arm64'],
  maxLayers: 128,
  maxLayerBytes: 4 * 2 ** 30,
  maxImageBytes: 16 * 2 ** 30,
  maxLayerUncompressedBytes: 10 * 2 ** 30,
  maxImageUncompressedBytes: 10 * 2 ** 30,
  maxLayerEntries: 200_000,
  maxImageEntries: 200_000,
  allowDevices: true,
}

/** What a conversion worker checks while reading the layers (convert-job.ts). */
export function readingLimitsOf(limits: ConversionLimits): {
  safety: TarSafetyOptions
  expansion: ExpansionLimits
} {
  return {
    safety: { allowDevices: limits.allowDevices, maxEntries: limits.maxLayerEntries },
    expansion: {
      maxLayerBytes: limits.maxLayerUncompressedBytes,
      maxImageBytes: limits.maxImageUncompressedBytes,
      maxImageEntries: limits.maxImageEntries,
    },
  }
}

export interface CheckedLayer {
  digest: ImageManifest['layers'][number]['digest']
  size: number
  compression: LayerCompression
}

/**
 * The checks run before any conversion work: platform, media types, layer count and sizes, and
 * that the config's DiffIDs match the layers one to one. Throws a user-fault ThawError whose code
 * and message become the recorded reason. (Tar content, uncompressed sizes and entry counts are
 * checked while converting, by the format's TarSafety and ExpansionBudget: they cannot be known
 * without reading the layers.)
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
