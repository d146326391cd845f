import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createSandbox, type Sandbox } from '../../../../host/sandbox/sandbox.ts'
import type { ImageProcessConfig } from '../../../../host/sandbox/node-process.ts'
import type { BenchImage } from '../build-images.ts'
import type { ColdStartSample, Contender, ContenderContext } from '../contender.ts'
import { readImageConfig } from '../image-config.ts'
import {
  dropCaches,
  listenWorker,
  requestHello,
  WORKER_ARGS,
  WORKER_ENV,
} from '../worker-session.ts'

/**
 * Contender 2: the image already unpacked on local disk (one directory, as after a pull), started
 * in thaw's own node sandbox (host/sandbox: a node prepared ahead, then specialize = overlay mount
 * + runc), with the page cache dropped before each start (`cold`) or left warm (`warm`). t0 is
 * after the node is prepared, as a host with a warm pool would have it when the request arrives.
 */
export function cachedSandboxContender(variant: 'cold' | 'warm'): Contender {
  let sandbox: Sandbox | undefined
  let ctx: ContenderContext | undefined
  let config: ImageProcessConfig = {}
  return {
    id: `cached-${variant}`,
    label: variant === 'cold' ? 'cached, page cache dropped' : 'cached, warm',
    description:
      variant === 'cold'
        ? 'image unpacked on local disk, started in the thaw node sandbox (runc), page cache dropped before each start'
        : 'image unpacked on local disk, started in the thaw node sandbox (runc), page cache warm',
    offline: true,
    // The single-layer image unpacks to the same tree as the 28-layer one: one row covers both.
    appliesTo: (image: BenchImage) => image.name !== 'single',
    async prepare(context) {
      ctx = context
      config = await readImageConfig(context.layout, context.image.tag)
      const stateDir = join(context.scratchDir, 'sandbox')
      await mkdir(stateDir, { recursive: true })
      sandbox = await createSandbox({ stateDir, workerDir: context.workerDir })
    },
    async coldStart(signal): Promise<ColdStartSample> {
      if (!sandbox || !ctx) throw new Error('prepare first')
      const node = await sandbox.prepareNode({ signal })
      try {
        if (variant === 'cold') await dropCaches()
        const t0 = performance.now()
        const session = await listenWorker(node.runDir)
        try {
          const proc = await node.specialize({
            lowerDir: ctx.image.rootfs,
            imageConfig: config,
            args: WORKER_ARGS,
            env: WORKER_ENV,
            memoryBytes: 1 << 30,
            pids: 512,
            signal,
          })
          const t1 = performance.now()
          const failed = proc.exited.then((exit) => {
            throw new Error(
              `the node exited before answering: ${JSON.stringify(exit)} ${proc.output().stderr.slice(-2000)}`,
            )
          })
          const hello = await Promise.race([session.hello, failed])
          const ready = await Promise.race([session.ready, failed])
          const answer = await requestHello(join(node.runDir, 'worker.sock'), signal)
          return {
            ttfbMs: answer.firstByteAt - t0,
            bytesFetched: 0,
            requests: 0,
            status: answer.status,
            phases: {
              'specialize (overlay mount, runc start)': t1 - t0,
              'node start to worker hello': hello - t1,
              'app load to ready': ready - hello,
              'request to first byte': answer.firstByteAt - ready,
            },
          }
        } finally {
          await session.close()
        }
      } finally {
        await node.destroy()
      }
    },
    async cleanup() {
      await sandbox?.close()
      sandbox = undefined
    },
  }
}
