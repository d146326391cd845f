import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForStreamingArtifact } from '../../host/deploy/wait-for-artifact.ts'
import { fuseMountsUnder } from '../../host/mount/fuse-mount.ts'
import { processStartTime } from '../../host/sandbox/instance-registry.ts'
import { mountsUnder } from '../../host/sandbox/mounts.ts'
import { createRegistryClient } from '../../runtime/oci/remote/index.ts'
import { pushStaticHandlerImage } from '../support/custom-handler.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { freePort, startProcess, type TestProcess } from '../support/processes.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * The host's /dev/fuse descriptor must be its own: opened close-on-exec, so neither runc nor a
 * node's processes inherit it (a node could otherwise hold the connection, or read and answer
 * its requests). What keeps a mount up after a SIGKILL of the host is thaw-fuse-keeper, on
 * purpose: the node's accesses wait, and the next host on the same state answers them. The nodes
 * themselves go on too (their shim and output files do not depend on the host process), and the
 * next host adopts the current ones and removes superseded ones. Real edge, host processes, FUSE
 * and OCI runtime.
 */
const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const MASTER = 'master-key-of-this-test'
const skip = sandboxUnavailable || (fuseUnavailable ? 'no /dev/fuse' : false)
/** The custom-handler case builds its static handler with gcc. */
const noCompiler = onPath('gcc') ? false : 'gcc is not installed'

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

/**
 * Looks up a new name in its image every 50 ms (each one reaches the FUSE server: a name never
 * looked up is in no kernel cache) and counts what failed other than ENOENT; `who` answers with
 * an id made when the node loaded; `slow` holds a request (so a drained node stays).
 */
const KEEP_APP = `const { app } = require('@azure/functions')
const fs = require('node:fs/promises')
const id = require('node:crypto').randomUUID()
let lookups = 0
const failures = []
void (async () => {
  for (let n = 0; ; n++) {
    await fs.stat('/app/never-' + n).then(
      () => failures.push('found never-' + n),
      (e) => (e.code === 'ENOENT' ? lookups++ : failures.push(e.code)),
    )
    await new Promise((r) => setTimeout(r, 50))
  }
})()
let served = 0
app.http('who', { authLevel: 'anonymous', handler: async () => {
  console.log('served ' + id + ' ' + ++served)
  return { jsonBody: { id, lookups, failures, served } }
} })
app.http('slow', { authLevel: 'anonymous', handler: async () => {
  console.log('slow ' + id)
  await new Promise((r) => setTimeout(r, 600000))
  return { body: 'late' }
} })
`

interface Who {
  id: string
  lookups: number
  failures: string[]
  served: number
}

describe.skipIf(skip)(
  skip ? `host FUSE descriptor (skipped: ${skip})` : 'host FUSE descriptor',
  { timeout: 240_000 },
  () => {
    let edgeUrl: string
    let image: string
    let handlerImage: string | undefined
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
          'index.js': `${APP}\nrequire('./keep.js')\n`,
          'keep.js': KEEP_APP,
        },
      })
      if (!noCompiler) handlerImage = await pushStaticHandlerImage(`127.0.0.1:${port}`, 'apps/ch')
      const client = createRegistryClient({ registry: edgeUrl })
      for (const repository of handlerImage ? ['apps/fds', 'apps/ch'] : ['apps/fds']) {
        const manifest = (await client.getManifest(repository, 'v1')).digest
        await waitForStreamingArtifact({ client, repository, manifest })
      }
      await client.close()
    }, 600_000)

    afterAll(async () => {
      await edge?.stop()
    })

    /** `thaw host` on `state` with a pool of `pool` warm nodes, behind this file's edge. */
    const startThawHost = async (state: string, pool: number, extra: string[] = []) => {
      const port = await freePort()
      const host = startProcess(THAW, [
        'host',
        ...['--port', String(port), '--edge', edgeUrl, '--pool', String(pool), '--state', state],
        ...['--master-key', MASTER, ...extra],
      ])
      await host.waitFor(/listening on/, 120_000)
      return { host, url: `http://127.0.0.1:${port}` }
    }

    it("no node process holds a host descriptor; a killed host's mount waits for the next host, which answers", async () => {
      const state = await tmpDir('thaw-fuse-fd-host-')
      const startHost = () => startThawHost(state, 1)
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
        // The same image mount; the node's idmapped view of it stays with the node, which the next
        // host adopted.
        const mounts = await fuseMountsUnder(state)
        expect(mounts.filter((m) => !m.startsWith(join(state, 'sandbox')))).toEqual([mount])
        const again = await fetch(`${next.url}/fds/api/fds`)
        expect(again.status).toBe(200)
      } finally {
        await host.kill()
        next ??= await startHost() // removes the dead host's node, serves or detaches its mount
        await next.host.stop(30_000)
      }
      expect(await fuseMountsUnder(state)).toEqual([])
    })

    it('a SIGKILLed host’s current node goes on reading its image and serves the next host without a cold start; its superseded node is removed', async () => {
      const state = await tmpDir('thaw-keep-nodes-host-')
      const startHost = () => startThawHost(state, 0)
      const admin = { 'x-functions-key': MASTER, 'content-type': 'application/json' }
      const who = async (url: string) => {
        const res = await fetch(`${url}/keep/api/who`)
        expect(res.status).toBe(200)
        return { cold: res.headers.get('x-thaw-cold-start'), body: (await res.json()) as Who }
      }
      const first = await startHost()
      let next: Awaited<ReturnType<typeof startHost>> | undefined
      const slow = new AbortController()
      try {
        const created = await fetch(`${first.url}/admin/apps`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ name: 'keep', image }),
        })
        expect(created.status, await created.clone().text()).toBe(201)
        const r1 = await who(first.url)
        // Revision 1's node holds a request; revision 2 starts beside it, and revision 1 drains.
        const held = fetch(`${first.url}/keep/api/slow`, { signal: slow.signal }).catch(() => {})
        await until(async () => (await logLines(first.url)).includes(`slow ${r1.body.id}`))
        const patched = await fetch(`${first.url}/admin/apps/keep`, {
          method: 'PATCH',
          headers: admin,
          body: JSON.stringify({ settings: { REVISION: '2' } }),
        })
        expect(patched.status, await patched.clone().text()).toBe(200)
        const r2 = await who(first.url)
        expect(r2.body.id).not.toBe(r1.body.id)
        const records = await nodeRecords(state)
        expect(records.map((n) => n.revision).sort()).toEqual([1, 2])
        const [old, current] = [1, 2].map((r) => records.find((n) => n.revision === r)!)

        await first.host.kill() // SIGKILL
        slow.abort()
        await held
        // No host runs: both nodes go on, and the current one's image lookups wait, not fail.
        for (const n of [old!, current!]) expect(await alive(n)).toBe(true)

        next = await startHost()
        // It adopted the current node and removed the superseded one, before it listened.
        const [adoption] = await next.host.waitFor(/^.*nodes of a host that died.*$/m)
        console.log(adoption)
        const report = JSON.parse(adoption) as {
          adopted: string[]
          destroyed: Record<string, string>
        }
        expect(report.adopted).toHaveLength(1)
        expect(Object.values(report.destroyed)).toEqual([
          expect.stringMatching(/revision 1 is superseded by 2/),
        ])
        const after = await who(next.url)
        expect(after.body.id).toBe(r2.body.id) // the same process: its id is made at load
        expect(after.cold).toBeNull() // no cold start
        expect(after.body.served).toBe(r2.body.served + 1)
        expect(after.body.lookups).toBeGreaterThan(r2.body.lookups)
        expect(after.body.failures).toEqual([])
        expect(await alive(current!)).toBe(true)
        // The superseded node is gone: its process, its directory.
        await until(async () => !(await alive(old!)))
        expect(existsSync(old!.dir)).toBe(false)
        // What the adopted node prints reaches the new host's log of the app.
        const line = `served ${r2.body.id} ${after.body.served}`
        await until(async () => (await logLines(next!.url)).includes(line))
      } finally {
        slow.abort()
        await first.host.kill()
        next ??= await startHost() // adopts or removes the dead host's nodes, serves its mount
        await next.host.stop(30_000)
      }
      expect(await nodeRecords(state)).toEqual([])
      expect(await fuseMountsUnder(state)).toEqual([])
    })

    it.skipIf(noCompiler)(
      'a custom-handler node serves the next host as the same process; with no host to come back within --orphan-timeout it ends, leaving no mount of its own',
      async () => {
        const state = await tmpDir('thaw-keep-handler-')
        const startHost = (extra: string[] = []) => startThawHost(state, 0, extra)
        const hello = async (url: string) => {
          const res = await fetch(`${url}/ch/api/hello/thaw`)
          expect([res.status, await res.text()]).toEqual([201, 'hello thaw'])
          const h = (name: string) => res.headers.get(name)
          return {
            id: h('x-handler-id'),
            served: Number(h('x-handler-served')),
            cold: h('x-thaw-cold-start'),
          }
        }
        const first = await startHost()
        let second: Awaited<ReturnType<typeof startHost>> | undefined
        let third: Awaited<ReturnType<typeof startHost>> | undefined
        try {
          const created = await fetch(`${first.url}/admin/apps`, {
            method: 'POST',
            headers: { 'x-functions-key': MASTER, 'content-type': 'application/json' },
            body: JSON.stringify({ name: 'ch', image: handlerImage }),
          })
          expect(created.status, await created.clone().text()).toBe(201)
          const before = await hello(first.url)
          const [node, ...others] = await nodeRecords(state)
          expect(others).toEqual([])

          await first.host.kill() // SIGKILL
          // The next host waits 2 s for a host after its own death: its setting applies.
          second = await startHost(['--orphan-timeout', '2'])
          const [adoption] = await second.host.waitFor(/^.*nodes of a host that died.*$/m)
          expect((JSON.parse(adoption) as { adopted: string[] }).adopted).toHaveLength(1)
          const after = await hello(second.url)
          expect(after.id).toBe(before.id) // the same handler process: its id is made at start
          expect(after.cold).toBeNull() // no cold start
          expect(after.served).toBe(before.served + 1)
          // What it prints reaches the new host's log of the app.
          const line = `served ${after.id} ${after.served}`
          await until(async () => (await logLines(second!.url, 'ch')).includes(line))

          const imageMounts = await fuseMountsUnder(join(state, 'mounts'))
          expect(imageMounts).toHaveLength(1)
          await second.host.kill() // SIGKILL, and no host comes back
          await until(async () => existsSync(join(node!.dir, 'exit'))) // the shim's status file
          expect(await alive(node!)).toBe(false)
          expect(await readFile(join(node!.dir, 'exit'), 'utf8')).toBe('137\n') // SIGKILL
          expect(await readFile(join(node!.dir, 'stderr'), 'utf8')).toMatch(
            /no host came back within 2 s: ending the node/,
          )
          // Its shim unmounted the node's overlay and tmpfs; the image mount is the keeper's, up
          // and waiting for the next host.
          await until(async () => (await mountsUnder(join(node!.dir, 'fs'))).length === 0)
          expect(await fuseMountsUnder(join(state, 'mounts'))).toEqual(imageMounts)
          let settled = false
          const stat = statInChild(join(imageMounts[0]!, `never-${Date.now()}`), 120_000).finally(
            () => (settled = true),
          )
          await new Promise((r) => setTimeout(r, 1_000))
          expect(settled).toBe(false) // waits: not ENOTCONN

          // The next host removes what is left of the node and serves the mount again.
          third = await startHost()
          expect(await stat).toMatch(/No such file or directory/)
          expect(existsSync(node!.dir)).toBe(false)
          const again = await hello(third.url) // a new node
          expect(again.id).not.toBe(before.id)
        } finally {
          await first.host.kill()
          await second?.host.kill()
          third ??= await startHost()
          await third.host.stop(30_000)
        }
        expect(await nodeRecords(state)).toEqual([])
        expect(await fuseMountsUnder(state)).toEqual([])
      },
    )
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

/** The messages of the app's log on that host. */
async function logLines(url: string, app = 'keep'): Promise<string[]> {
  const res = await fetch(`${url}/admin/apps/${app}/logs`, {
    headers: { 'x-functions-key': MASTER },
  })
  const { records } = (await res.json()) as { records: { message: string }[] }
  return records.map((r) => r.message)
}

interface NodeOnDisk {
  dir: string
  revision?: number
  pid?: number
  startTime?: string
}

/** The node records (host/sandbox/node-record.ts) under the host's state, of started nodes. */
async function nodeRecords(state: string): Promise<NodeOnDisk[]> {
  const sandbox = join(state, 'sandbox')
  const out: NodeOnDisk[] = []
  for (const instance of await readdir(sandbox).catch(() => [])) {
    if (!/^[a-z0-9]{6}$/.test(instance)) continue
    for (const name of await readdir(join(sandbox, instance)).catch(() => [])) {
      const dir = join(sandbox, instance, name)
      const text = await readFile(join(dir, 'node.json'), 'utf8').catch(() => undefined)
      if (!text) continue
      const record = JSON.parse(text) as {
        container?: { pid: number }
        owner?: { revision: number }
      }
      if (!record.container) continue
      const pid = record.container.pid
      out.push({
        dir,
        revision: record.owner?.revision,
        pid,
        startTime: await processStartTime(pid),
      })
    }
  }
  return out
}

/** The node's first process is the one its record names (same PID, same start). */
async function alive(n: NodeOnDisk): Promise<boolean> {
  return !!n.startTime && (await processStartTime(n.pid!)) === n.startTime
}

async function until(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await new Promise((r) => setTimeout(r, 200))
  }
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, tool)))
}
