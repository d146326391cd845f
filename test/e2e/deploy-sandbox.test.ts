import { copyFile, chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildAppImage, readAppSource } from '../../host/deploy/build-app-image.ts'
import { initProject } from '../../host/init/init-project.ts'
import { readAnswer } from '../../host/request-body/index.ts'
import { listenControl } from '../../host/worker/control-server.ts'
import { createWorkerClient } from '../../host/worker/worker-client.ts'
import { emptyImage } from '../../runtime/oci/image.ts'
import type { ReadyMessage } from '../../runtime/protocol/worker-messages.ts'
import { bundleWorker } from '../../runtime/worker/bundle.ts'
import { run } from '../support/processes.ts'
import { nodeBase, sandboxUnavailable, testSandbox } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

const title = sandboxUnavailable
  ? `a deployed image in a sandbox node (skipped: ${sandboxUnavailable})`
  : 'a deployed image in a sandbox node'

describe.skipIf(sandboxUnavailable)(title, () => {
  it('starts from its own config (the worker entrypoint, WorkingDir, Env) in runc and answers', async () => {
    // The worker, bound read-only at /.thaw/worker as the host does.
    const workerDir = await tmpDir('thaw-deploy-worker-')
    await chmod(workerDir, 0o755)
    await copyFile(await bundleWorker(), join(workerDir, 'worker.mjs'))
    const sandbox = await testSandbox({ workerDir })

    // The image's root: the Node.js base's files with the app layer unpacked over them.
    const dir = join(await tmpDir('thaw-deploy-sbx-'), 'hello')
    await initProject({ dir, template: 'http-typescript' })
    const { image } = await buildAppImage(emptyImage(), await readAppSource(dir))
    const root = join(await tmpDir('thaw-deploy-root-'), 'root')
    await run('cp', ['-a', (await nodeBase()).rootfs, root])
    const layer = image.manifest.layers.at(-1)!
    const chunks: Buffer[] = []
    for await (const c of await image.openBlob(layer)) chunks.push(c as Buffer)
    await writeFile(`${root}.app.tar.gz`, Buffer.concat(chunks))
    await run('tar', ['-xzf', `${root}.app.tar.gz`, '-C', root])

    const node = await sandbox.prepareNode()
    const control = await listenControl(join(node.runDir, 'c.sock'))
    await chmod(control.path, 0o666)
    const ready = new Promise<ReadyMessage>((resolve, reject) =>
      control.onMessage((m) => {
        if (m.type === 'ready') resolve(m)
        if (m.type === 'fatal') reject(new Error(m.message))
      }),
    )
    const proc = await node.specialize({
      lowerDir: root,
      imageConfig: image.config.config!,
      env: { THAW_CONTROL: '/.thaw/run/c.sock', THAW_LISTEN: '/.thaw/run/w.sock' },
      memoryBytes: 256 * 1024 * 1024,
      pids: 64,
    })
    const exited = proc.exited.then((e) => {
      throw new Error(`the node ${e.message}: ${JSON.stringify(proc.output())}`)
    })
    const message = await Promise.race([ready, exited])
    expect(message.functions.map((f) => f.name)).toEqual(['hello'])
    const client = createWorkerClient(join(node.runDir, 'w.sock'))
    try {
      const res = await client.dispatch({
        functionName: 'hello',
        params: {},
        invocationId: 'a1',
        method: 'GET',
        path: '/api/hello?name=sandbox',
        headers: { host: 'localhost' },
        body: null,
      })
      const body = (await readAnswer(res.body)).toString()
      expect(res.status).toBe(200)
      expect(body).toBe('Hello, sandbox!')
    } finally {
      await client.destroy()
      await control.close()
    }
  })
})
