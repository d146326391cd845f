import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { baseOciImage } from '../../host/build/base-oci-image.ts'
import { buildDebianBase } from '../../host/build/debian-base.ts'
import { createMounts } from '../../host/cli/host-mounts.ts'
import { pushAppImage } from '../../host/deploy/push-app-image.ts'
import { silentHostLogger } from '../../host/log/host-logger.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { startEdgeChild, type EdgeChild } from '../../host/up/edge-child.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { debianRootfs, THAW_CACHE } from '../support/debian-rootfs.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { cleanupHostLeftovers } from '../support/host-leftovers.ts'
import { freePort, run } from '../support/processes.ts'
import { sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * The Python custom-handler template as a user deploys it: `thaw init -t custom-handler-python`
 * and `thaw deploy` onto the `thaw/debian` base, through the edge `thaw up` starts (origin mode,
 * its defaults), to a host on lazy mounts; then it answers. The base is a real Debian tree
 * (device nodes in /dev included, which the edge once refused: TAR_DEVICE_NOT_ALLOWED) built as
 * `thaw base debian` builds it, from the minbase tree mount-debian caches plus python3 (apt-get
 * in a chroot, not a second debootstrap), cached in turn.
 */
const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MASTER = 'master-key-of-the-python-test'

const skip = sandboxUnavailable || (fuseUnavailable ? 'no /dev/fuse' : false)
const title = skip ? `python template (skipped: ${skip})` : 'python template'

describe.skipIf(skip)(title, { timeout: 600_000 }, () => {
  let edge: EdgeChild | undefined
  let host: RunningHost | undefined
  let hostState: string | undefined
  let unavailable: string | undefined
  let appDir: string
  let deployed: { stdout: string; stderr: string }

  beforeAll(async () => {
    const minbase = await debianRootfs()
    if (minbase.skipped !== undefined) {
      unavailable = minbase.skipped
      return
    }
    const base = await buildDebianBase({
      minbase: minbase.path,
      packages: ['python3'],
      slim: true, // as thaw base debian builds it
      outDir: join(THAW_CACHE, 'debian-bookworm-minbase-python3'),
    })
    const state = await tmpDir('thaw-python-')
    edge = await startEdgeChild({
      port: await freePort(),
      store: join(state, 'edge'),
      logFile: join(state, 'edge.log'),
    })
    const client = createRegistryClient({ registry: edge.url })
    await pushAppImage(client, 'thaw/debian', 'latest', baseOciImage(base))
    await client.close()

    hostState = join(state, 'host')
    const mounts = await createMounts({ dir: join(hostState, 'mounts'), edges: [edge.url] })
    host = await startHost({
      stateDir: hostState,
      port: 0,
      warm: 1,
      mounts,
      masterKey: MASTER,
      edgeFor: () => edge!.url,
      logger: silentHostLogger,
    })
    appDir = join(state, 'py-hello')
    await run(THAW, ['init', appDir, '--template', 'custom-handler-python'])
    deployed = await run(
      THAW,
      ['deploy', '--registry', edge.url, '--host', host.url, '--master-key', MASTER],
      { cwd: appDir },
    )
  }, 900_000)

  afterAll(async () => {
    await host?.close()
    if (hostState) await cleanupHostLeftovers(hostState)
    await edge?.stop()
  })

  it('deploys onto the thaw/debian base through the default edge, listing the function', (ctx) => {
    if (unavailable) return ctx.skip(unavailable)
    expect(deployed.stdout).toMatch(/\/apps\/py-hello@sha256:[0-9a-f]{64}/)
    expect(deployed.stdout + deployed.stderr).toContain(`${host!.url}/py-hello/api/hello`)
  })

  it('answers through the Python handler, cold and warm', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable)
    await host!.pool.nodesOf(host!.apps.get('py-hello')!).drainAll() // the health gate's node
    const cold = await fetch(`${host!.url}/py-hello/api/hello?name=Ada`)
    expect([cold.status, await cold.text()]).toEqual([200, 'Hello, Ada!'])
    expect(cold.headers.get('x-thaw-cold-start')).toMatch(/resolve=/)
    const warm = await fetch(`${host!.url}/py-hello/api/hello`, { method: 'POST', body: 'Grace' })
    expect([warm.status, await warm.text()]).toEqual([200, 'Hello, Grace!'])
  })
})
