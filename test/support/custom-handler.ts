import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { BaseImage } from '../../host/build/base-image.ts'
import { ociArchitecture } from '../../host/build/base-image.ts'
import { runCommand } from '../../host/os/run-command.ts'
import type { Digest } from '../../runtime/oci/digest.ts'
import { pushAppImage } from './push-test-image.ts'
import { tmpDir } from './tmp.ts'

const HANDLER_SOURCE = resolve(import.meta.dirname, '../e2e/fixtures/custom-handler/handler.c')

let handler: Promise<string> | undefined
/**
 * The static C custom handler of the e2e tests (test/e2e/fixtures/custom-handler/handler.c),
 * built once per test file: it needs gcc and a static libc.
 */
export function buildStaticHandler(): Promise<string> {
  handler ??= (async () => {
    const out = join(await tmpDir('thaw-handler-'), 'handler')
    await runCommand('gcc', ['-static', '-O2', '-o', out, HANDLER_SOURCE])
    return out
  })()
  return handler
}

let empty: Promise<BaseImage> | undefined
/** A base with nothing in it but /tmp: for images whose only program is a static binary. */
export function emptyBase(): Promise<BaseImage> {
  empty ??= (async (): Promise<BaseImage> => {
    const dir = await tmpDir('thaw-empty-base-')
    const rootfs = join(dir, 'rootfs')
    await mkdir(join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 })
    const tar = join(dir, 'layer.tar')
    await runCommand('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-C',
      rootfs,
      '-cf',
      tar,
      '.',
    ])
    const bytes = await readFile(tar)
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
    return {
      kind: 'debian',
      rootfs,
      layer: { tar: { path: tar, digest, size: bytes.length } },
      platform: { architecture: ociArchitecture(), os: 'linux' },
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: [], WorkingDir: '/' },
      description: 'empty: static binaries only',
      key: digest,
    }
  })()
  return empty
}

/**
 * Pushes a custom-handler app as `thaw deploy` builds one (the handler as entrypoint, the app
 * folder as WorkingDir) on the empty base: function `hello` (GET, route hello/{name}, anonymous)
 * answered by the static C handler. Returns the reference.
 */
export async function pushStaticHandlerImage(
  registry: string,
  repository: string,
): Promise<string> {
  return pushAppImage({
    registry,
    repository,
    tag: 'v1',
    base: await emptyBase(),
    azureFunctions: false,
    executables: { handler: await buildStaticHandler() },
    config: {
      Entrypoint: ['/home/site/wwwroot/handler'],
      Cmd: [],
      WorkingDir: '/home/site/wwwroot',
    },
    files: {
      'host.json': JSON.stringify({
        version: '2.0',
        customHandler: { description: { defaultExecutablePath: 'handler' } },
      }),
      'hello/function.json': JSON.stringify({
        bindings: [
          {
            type: 'httpTrigger',
            direction: 'in',
            name: 'req',
            authLevel: 'anonymous',
            methods: ['get'],
            route: 'hello/{name}',
          },
          { type: 'http', direction: 'out', name: 'res' },
        ],
      }),
    },
  })
}
