import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from './processes.ts'
import { tmpDir } from './tmp.ts'

/**
 * A pod sandbox (pause) image built here (fixtures/pause.c, static, in one umoci layer) and pushed
 * with skopeo to `registry` (`host:port`, plain http) as `thaw-test/pause:t`: what containerd's CRI
 * plugin takes as `sandbox_image`, so no test pulls registry.k8s.io/pause. Returns its reference.
 */
export async function pushPauseImage(registry: string): Promise<string> {
  const dir = await tmpDir('thaw-pause-')
  const layout = join(dir, 'layout')
  const bundle = join(dir, 'bundle')
  await run('umoci', ['init', '--layout', layout])
  await run('umoci', ['new', '--image', `${layout}:t`])
  await run('umoci', ['unpack', '--image', `${layout}:t`, bundle])
  await mkdir(join(bundle, 'rootfs'), { recursive: true })
  const source = join(import.meta.dirname, 'fixtures/pause.c')
  await run('gcc', ['-static', '-O2', '-o', join(bundle, 'rootfs/pause'), source])
  await run('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:t`, bundle])
  await run('umoci', ['config', '--image', `${layout}:t`, '--config.entrypoint', '/pause'])
  const reference = `${registry}/thaw-test/pause:t`
  await run('skopeo', [
    'copy',
    '--dest-tls-verify=false',
    `oci:${layout}:t`,
    `docker://${reference}`,
  ])
  return reference
}
