import { baseOciImage } from '../build/base-oci-image.ts'
import type { BaseImage } from '../build/base-image.ts'
import { buildDebianBase } from '../build/debian-base.ts'
import { buildNodeBase } from '../build/node-base.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../runtime/oci/remote/registry-client.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import type { DeployEvent } from './deploy-app.ts'
import { pushAppImage } from './push-app-image.ts'

export interface PushBaseOptions {
  kind: 'node' | 'debian'
  /** Registry URL; or pass `client`. */
  registry?: string
  client?: RegistryClient
  /** Default `thaw/<kind>` and `latest`: what `thaw deploy` uses by default. */
  repository?: string
  tag?: string
  /** Build folder (default /var/tmp/thaw-cache/base-<kind>); an unchanged build there is reused. */
  outDir?: string
  /** debian: the apt mirror. */
  mirror?: string
  /** Progress (push events and the final `pushed`), as deployApp reports them. */
  onEvent?: (event: DeployEvent) => void
  /** A line at each step of the build (which one, the debian build's phases). */
  onProgress?: (line: string) => void
  signal?: AbortSignal
}

/**
 * `thaw base`: builds a base with host/build (node: this machine's node and its libraries;
 * debian: debootstrap, minutes, needs the apt mirror) and pushes it as a one-layer OCI image
 * (base-oci-image.ts). Blobs the registry has are not sent again.
 */
export async function buildAndPushBase(
  o: PushBaseOptions,
): Promise<{ base: BaseImage; reference: string; digest: Digest }> {
  const outDir = o.outDir ?? `/var/tmp/thaw-cache/base-${o.kind}`
  const client =
    o.client ?? createRegistryClient({ registry: o.registry ?? 'http://127.0.0.1:5000' })
  try {
    const repository = o.repository ?? `thaw/${o.kind}`
    const tag = o.tag ?? 'latest'
    // A registry that cannot be reached fails now, not after a build of a minute or more.
    await client.headManifest(repository, tag, { signal: o.signal })
    o.onProgress?.(`Building the ${o.kind} base in ${outDir} (reused when unchanged)`)
    const base =
      o.kind === 'node'
        ? await buildNodeBase({ outDir, signal: o.signal })
        : await buildDebianBase({
            outDir,
            slim: true,
            mirror: o.mirror,
            signal: o.signal,
            onProgress: o.onProgress,
          })
    const pushed = await pushAppImage(client, repository, tag, baseOciImage(base), {
      signal: o.signal,
      onProgress: (progress) => o.onEvent?.({ type: 'push', progress }),
    })
    o.onEvent?.({
      type: 'pushed',
      reference: `${client.registry.host}/${repository}:${tag}`,
      uploaded: pushed.uploaded,
      reused: pushed.reused,
    })
    return {
      base,
      reference: `${client.registry.host}/${repository}@${pushed.digest}`,
      digest: pushed.digest,
    }
  } finally {
    if (!o.client) await client.close()
  }
}
