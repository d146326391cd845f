import { OciError } from './errors.ts'
import type { Descriptor, ImageIndex, Platform } from './schemas.ts'

/** The platform of this process in OCI terms (image-spec config.md: GOOS/GOARCH values). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
  }
  return {
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture: arch[process.arch] ?? process.arch,
  }
}

/**
 * The manifest of an index for `platform` (os and architecture must match; variant too when
 * asked for). Entries without a platform (attestations, artifacts) never match.
 */
export function selectManifest(index: ImageIndex, platform: Platform = hostPlatform()): Descriptor {
  const match = index.manifests.find(
    (d) =>
      d.platform?.os === platform.os &&
      d.platform.architecture === platform.architecture &&
      (platform.variant === undefined || d.platform.variant === platform.variant),
  )
  if (!match) {
    const have = index.manifests.map((d) =>
      d.platform ? `${d.platform.os}/${d.platform.architecture}` : '?',
    )
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `no manifest for ${platform.os}/${platform.architecture} (index has ${have.join(', ') || 'nothing'})`,
    )
  }
  return match
}
