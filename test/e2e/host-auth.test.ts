import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForStreamingArtifact } from '../../host/deploy/wait-for-artifact.ts'
import { silentHostLogger } from '../../host/log/host-logger.ts'
import { createImageMounts } from '../../host/mount/create-image-mounts.ts'
import { startHost, type RunningHost } from '../../host/server/start-host.ts'
import { thawPaths, parseConversionStatus } from '../../runtime/artifact/thaw-api.ts'
import { isDigest, type Digest } from '../../runtime/oci/digest.ts'
import { createRegistryClient, readBody, type RegistryClient } from '../../runtime/oci/remote/index.ts'
import { fuseUnavailable } from '../support/fuse.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { pushAppImage } from '../support/push-test-image.ts'
import { nodeBase, sandboxUnavailable } from '../support/sandbox.ts'
import { tmpDir } from '../support/tmp.ts'

/**
 * The host against an edge with auth on (no anonymous access): with THAW_REGISTRY_* credentials
 * it mounts the image (manifest, referrers, index and range requests), uploads the profile of
 * the first cold start (the profiles extension needs push) and replays the prefetch bundle on
 * the next; without credentials a cold start fails with the edge's 401, and nothing is mounted.
 * Real edge, FUSE and OCI runtime.
 */
const THAW = resolve(import.meta.dirname, '../../bin/thaw')
const alice = { username: 'alice', password: 's3cret' }
const skip = sandboxUnavailable || (fuseUnavailable ? 'no /dev/fuse' : false)

const APP = `const { app } = require('@azure/functions')
app.http('hello', { authLevel: 'anonymous', handler: async () => ({ body: 'hello through auth' }) })
`

describe.skipIf(skip)(skip ? `host with an auth edge (skipped: ${skip})` : 'host with an auth edge', { timeout: 180_000 }, () => {
  let edge: TestProcess
  let edgeUrl: string
  let client: RegistryClient
  let image: string
  let manifest: Digest
  const hosts: RunningHost[] = []

  beforeAll(async () => {
    const dir = await tmpDir('thaw-host-auth-')
    const { stdout: hash } = await run(THAW, ['edge', 'hash-password'], { input: `${alice.password}\n` })
    const config = join(dir, 'edge.json')
    await writeFile(config, JSON.stringify({
      auth: {
        users: { alice: { password: hash.trim() } },
        access: [{ repository: 'apps/**', users: ['alice'], actions: ['pull', 'push'] }],
      },
    }))
    const port = await freePort()
    edge = startProcess(THAW, ['edge', '--port', String(port), '--store', join(dir, 'store'), '--config', config])
    await edge.waitFor(/"msg":"listening"/)
    edgeUrl = `http://127.0.0.1:${port}`
    image = await pushAppImage({
      registry: `127.0.0.1:${port}`, repository: 'apps/secret', tag: 'v1', base: await nodeBase(),
      files: { 'host.json': '{ "version": "2.0" }', 'package.json': '{ "name": "secret", "main": "index.js" }', 'index.js': APP },
      credentials: alice,
    })
    client = createRegistryClient({ registry: edgeUrl, credentials: alice })
    manifest = (await client.getManifest('apps/secret', 'v1')).digest
    // The edge's status endpoint, asked with credentials (anonymous it answers 401).
    const states: string[] = []
    await waitForStreamingArtifact({ client, repository: 'apps/secret', manifest, onState: (s) => states.push(s) })
    expect(states.at(-1)).toBe('converted')
  }, 600_000)

  afterAll(async () => {
    for (const h of hosts) await h.close()
    await client?.close()
    await edge?.stop()
  })

  async function hostWith(credentials: typeof alice | undefined) {
    const state = await tmpDir('thaw-host-auth-state-')
    const warnings: string[] = []
    const mounts = await createImageMounts({
      edges: [edgeUrl], cacheDir: join(state, 'cache'), mountRoot: join(state, 'mnt'), cacheBytes: 1 << 30,
      background: false, credentials, logger: { info: () => {}, warn: (m) => warnings.push(m) },
    })
    const host = await startHost({ stateDir: state, port: 0, warm: 1, mounts, credentials, logger: silentHostLogger })
    hosts.push(host)
    const res = await admin(host, '/admin/apps', { name: 'secret', image })
    expect(res.status, await res.clone().text()).toBe(201)
    return { host, mounts, warnings }
  }
  const admin = (host: RunningHost, path: string, body?: unknown) =>
    fetch(`${host.url}${path}`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  const call = (host: RunningHost) => fetch(`${host.url}/secret/api/hello`)

  it('mounts with credentials, uploads the profile, and replays the bundle on the next cold start', async () => {
    const { host } = await hostWith(alice)
    const first = await call(host)
    expect(first.status, await first.clone().text()).toBe(200)
    expect(await first.text()).toBe('hello through auth')
    expect(first.headers.get('x-thaw-cold-start')).toMatch(/resolve=/)

    await host.profiles.settled()
    const profile = host.profiles.states().find((s) => s.manifest === manifest)
    expect(profile, JSON.stringify(host.profiles.states())).toMatchObject({ state: 'uploaded', recorded: 1 })

    // The edge re-lays the image out by the profile; then a bundle exists for it.
    let status = await statusOf()
    for (let i = 0; i < 300 && !(status.profile && status.state === 'converted'); i++) {
      await new Promise((r) => setTimeout(r, 200))
      status = await statusOf()
    }
    expect(status.profile && isDigest(status.profile)).toBe(true)

    expect((await admin(host, '/admin/apps/secret/drain')).status).toBeLessThan(300)
    expect((await admin(host, '/admin/cache/clear')).status).toBeLessThan(300)
    const second = await call(host)
    expect(second.status, await second.clone().text()).toBe(200)
    expect(second.headers.get('x-thaw-cold-start')).toMatch(/resolve=/)
    // The second start is for the function hello: its own workload, replaying the app's bundle.
    const replayed = host.profiles.states().filter((s) => s.manifest === manifest)
    expect(replayed.reduce((n, s) => n + s.replayed, 0)).toBe(1)
  })

  it('without credentials, answers the cold start with the edge\'s refusal and mounts nothing', async () => {
    const { host, mounts, warnings } = await hostWith(undefined)
    // Why the start failed is for the operator: callers with the master key and the log.
    const res = await fetch(`${host.url}/secret/api/hello`, { headers: { 'x-functions-key': host.masterKey } })
    expect(res.status).toBeGreaterThanOrEqual(500)
    expect(await res.text()).toMatch(/UNAUTHORIZED|authentication/i)
    const anonymous = await call(host)
    expect(anonymous.status).toBeGreaterThanOrEqual(500)
    expect(await anonymous.text()).not.toMatch(/UNAUTHORIZED|authentication/i)
    expect(warnings.join('\n')).toMatch(/401 UNAUTHORIZED/)
    expect(mounts.mounted()).toEqual([])
    expect(host.profiles.states().find((s) => s.manifest === manifest)).toBeUndefined()
  })

  async function statusOf() {
    const res = await client.extension('apps/secret', { method: 'GET', path: thawPaths.status('apps/secret', manifest) })
    return parseConversionStatus(JSON.parse((await readBody(res, 1 << 20, 'status')).toString()))
  }
})
