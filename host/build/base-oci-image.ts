import { createReadStream } from 'node:fs'
import { emptyImage, type Image } from '../../runtime/oci/image.ts'
import type { Layer } from '../../runtime/oci/layer.ts'
import { MediaType } from '../../runtime/oci/media-types.ts'
import { appendLayer } from '../../runtime/oci/mutate.ts'
import { ThawError } from '../../runtime/errors.ts'
import type { BaseImage } from './base-image.ts'

/** The label naming what a base was built from (`node v20.20.2 from /usr/bin/node`). */
export const BASE_LABEL = 'dev.thaw.base'

/**
 * A base built by node-base.ts or debian-base.ts as a one-layer OCI image: its gzip layer (read
 * from disk when pushed), its platform, and its config (Env, Cmd, WorkingDir, User), with
 * `created` fixed at the epoch so the same build always gives the same manifest digest.
 */
export function baseOciImage(base: BaseImage): Image {
  const gz = base.layer.gzip
  if (!gz)
    throw new ThawError(
      'BASE_NOT_GZIPPED',
      `the ${base.kind} base in ${base.rootfs} was built without gzip`,
    )
  const layer: Layer = {
    descriptor: { mediaType: MediaType.ociLayerGzip, digest: gz.digest, size: gz.size },
    diffId: base.layer.tar.digest,
    open: async () => createReadStream(gz.path),
  }
  return appendLayer(emptyImage(base.platform), layer, {
    env: Object.fromEntries(
      base.config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    ),
    ...(base.config.Entrypoint && { entrypoint: base.config.Entrypoint }),
    cmd: base.config.Cmd,
    workingDir: base.config.WorkingDir,
    ...(base.config.User !== undefined && { user: base.config.User }),
    labels: { [BASE_LABEL]: base.description },
    created: new Date(0),
    createdBy: `thaw base ${base.kind}`,
  })
}
