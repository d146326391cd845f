import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForStreamingArtifact } from '../../host/deploy/wait-for-artifact.ts'
import { fuseMountsUnder } from '../../host/mount/fuse-mount.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { freePort, startProcess, type TestProcess } from '../support/processes.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * The host's /dev/fuse descriptor must be its own: opened close-on-exec, so neither runc nor a
 * node's processes inherit it (a node could otherwise hold the connection, or read and answer
 * its requests). What keeps a mount up after a SIGKILL of the host is thaw-fuse-keeper, on
 * purpose: the node's accesses wait, and the next host on the same state answers them. Real edge,
 * host process, FUSE and OCI runtime.
 */
const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MASTER = 'master-key-of-this-test'
const skip = sandboxUnavailable || (fuseUnavailable ? 'no /dev/fuse' : false)

/** Walks every process the node has (its own PID namespace) and reports each descriptor, and the
 * node's uid map. */
const APP = `const { app } = require('@azure/functions')
const fs = require('node:fs')
app.http('fds', { authLevel: 'anonymous', handler: async () => {
  const out = []
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
    let fds = []
    try { fds = fs.readdirSync('/proc/' + pid + '/fd') } catch { continue }
    for (const fd of fds) {
      try { out.push({ pid, fd, target: fs.readlinkSync('/proc/' + pid + '/fd/' + fd) }) } catch {}
    }
  }
  return { jsonBody: { fds: out, uidMap: fs.readFileSync('/proc/self/uid_map', 'utf8') } }
} })
`

describe.skipIf(skip)(
  skip ? `host FUSE descriptor (skipped: ${skip})` : 'host FUSE descriptor',
  { timeout: 240_000 },
  () => {
    let edgeUrl: string
    let image: string
    let edge: TestProcess

    beforeAll(async () => {
      const dir = await tmpDir('thaw-fuse-fd-')
      const port = await freePort()
      edge = startProcess(THAW, ['edge', '--port', String(port), '--store', join(dir, 'store')])
      await edge.waitFor(/"msg":"listening"/)
      edgeUrl = `http://127.0.0.1:${port}`
      image = await pushAppImage({
        registry: `127.0.0.1:${port}`,
        repository: 'apps/fds',
        tag: 'v1',
        base: await nodeBase(),
        files: {
          'host.json': '{ "version": "2.0" }',
          'package.json': '{ "name": "fds", "main": "index.js" }',
          'index.js': APP,
        },
      })
      const client = createRegistryClient({ registry: edgeUrl })
      const manifest = (await client.getManifest('apps/fds', 'v1')).digest
      await waitForStreamingArtifact({ client, repository: 'apps/fds', manifest })
      await client.close()
    }, 600_000)

    afterAll(async () => {
      await edge?.stop()
    })

    it("no node process holds a host descriptor; a killed host's mount waits for the next host, which answers", async () => {
      const state = await tmpDir('thaw-fuse-fd-host-')
      const startHost = async () => {
        const port = await freePort()
        const host = startProcess(THAW, [
          'host',
          '--port',
          String(port),
          '--edge',
          edgeUrl,
          '--pool',
          '1',
          '--state',
          state,
          '--master-key',
          MASTER,
        ])
        await host.waitFor(/listening on/, 120_000)
        return { host, url: `http://127.0.0.1:${port}` }
      }
      const { host, url } = await startHost()
      let next: Awaited<ReturnType<typeof startHost>> | undefined
      try {
        const created = await fetch(`${url}/admin/apps`, {
          method: 'POST',
          headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'fds', image }),
        })
        expect(created.status, await created.clone().text()).toBe(201)
        const res = await fetch(`${url}/fds/api/fds`)
        expect(res.status).toBe(200)
        const { fds, uidMap } = (await res.json()) as {
          fds: { pid: string; fd: string; target: string }[]
          uidMap: string
        }
        // The FUSE layer allows idmapped mounts (FUSE_ALLOW_IDMAP, Linux 6.12+), so a node started
        // from a lazily mounted image gets its own user namespace: its root is not the host's.
        expect(uidMap.trim().split(/\s+/).slice(0, 2)).not.toEqual(['0', '0'])
        expect(fds.length).toBeGreaterThan(3) // the walk saw the node's processes
        expect(fds.filter((f) => f.target === '/dev/fuse')).toEqual([])
        expect(fds.filter((f) => f.target.startsWith(state))).toEqual([])

        const [mount] = await fuseMountsUnder(state)
        expect(mount).toBeDefined()
        await host.kill() // SIGKILL: the node outlives it, still using the image through the overlay
        // Nobody serves the connection now, but the keeper holds it: a lookup the kernel has not
        // cached waits (without the keeper it would fail at once with ENOTCONN)...
        let settled = false
        const stat = statInChild(join(mount!, `never-looked-up-${Date.now()}`), 120_000).finally(
          () => (settled = true),
        )
        await new Promise((r) => setTimeout(r, 1_000))
        expect(settled).toBe(false)
        // ...until the next host on the same state serves the mount again and answers it.
        next = await startHost()
        expect(await stat).toMatch(/No such file or directory/)
        expect(await fuseMountsUnder(state)).toEqual([mount])
        const again = await fetch(`${next.url}/fds/api/fds`)
        expect(again.status).toBe(200)
      } finally {
        await host.kill()
        next ??= await startHost() // removes the dead host's node, serves or detaches its mount
        await next.host.stop(30_000)
      }
      expect(await fuseMountsUnder(state)).toEqual([])
    })
  },
)

/** `stat` in a child process (never from the test process); 'timed out' if it hangs. */
function statInChild(path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise) => {
    const child = spawn('stat', [path], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolvePromise('timed out')
    }, timeoutMs)
    child.on('exit', () => {
      clearTimeout(timer)
      resolvePromise(out)
    })
  })
}
