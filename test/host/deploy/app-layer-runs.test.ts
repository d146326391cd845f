import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildAppImage, readAppSource } from '../../../host/deploy/build-app-image.ts'
import { initProject } from '../../../host/init/init-project.ts'
import { emptyImage } from '../../../runtime/oci/image.ts'
import { run } from '../../support/processes.ts'
import { tmpDir } from '../../support/tmp.ts'
import { startDirectWorker } from '../../support/worker.ts'

describe('the app layer of the http-typescript template', () => {
  it('unpacked on its own (no other node_modules above it), loads in the functions worker and answers', async () => {
    const dir = join(await tmpDir('thaw-deploy-run-'), 'hello')
    await initProject({ dir, template: 'http-typescript' })
    const { image } = await buildAppImage(emptyImage(), await readAppSource(dir))
    const layer = image.manifest.layers.at(-1)!
    const chunks: Buffer[] = []
    for await (const c of await image.openBlob(layer)) chunks.push(c as Buffer)
    const root = await tmpDir('thaw-deploy-rootfs-')
    await writeFile(join(root, 'layer.tar.gz'), Buffer.concat(chunks))
    await mkdir(join(root, 'fs'))
    await run('tar', ['-xzf', join(root, 'layer.tar.gz'), '-C', join(root, 'fs')])
    const env = Object.fromEntries(
      (image.config.config?.Env ?? []).map((e) => e.split(/=(.*)/s).slice(0, 2)),
    )
    const worker = await startDirectWorker(join(root, 'fs', image.config.config!.WorkingDir!), {
      env,
    })
    const ready = await worker.ready
    expect(ready.functions.map((f) => f.name)).toEqual(['hello'])
    const res = await worker.request('hello', '/api/hello?name=image')
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe('Hello, image!')
  })
})
