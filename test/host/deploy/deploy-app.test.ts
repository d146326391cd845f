import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deployApp, type DeployEvent } from '../../../host/deploy/deploy-app.ts'
import { initProject } from '../../../host/init/init-project.ts'
import { emptyImage } from '../../../runtime/oci/image.ts'
import { layerFromTar } from '../../../runtime/oci/layer.ts'
import { appendLayer } from '../../../runtime/oci/mutate.ts'
import { pullImage, pushImage } from '../../../runtime/oci/remote/image-transfer.ts'
import {
  createRegistryClient,
  type RegistryClient,
} from '../../../runtime/oci/remote/registry-client.ts'
import { sha256Of, type Digest } from '../../../runtime/oci/digest.ts'
import type { EdgeExtension } from '../../../registry-edge/edge-extension.ts'
import { appLayerTar } from '../../../host/deploy/app-layer.ts'
import { startTestEdge } from '../../support/edge-client.ts'
import { tmpDir } from '../../support/tmp.ts'

let registry: string
let client: RegistryClient
let baseLayer: Digest
const puts: Array<{ path: string; body: unknown }> = []
let hostUrl: string
/** Conversion states the fake status extension answers, per manifest digest, one per poll. */
const statusCalls = new Map<string, number>()

// A status extension like the converting edge's: pending, then converting, then converted.
const status: EdgeExtension = {
  name: 'status',
  handle: ({ subpath }) => {
    const manifest = subpath.slice(1)
    const n = (statusCalls.get(manifest) ?? 0) + 1
    statusCalls.set(manifest, n)
    const state = n < 2 ? 'pending' : n < 3 ? 'converting' : 'converted'
    const artifact = state === 'converted' ? { artifact: sha256Of(Buffer.from(manifest)) } : {}
    return Response.json({ manifest, state, updatedAt: new Date().toISOString(), ...artifact })
  },
}

beforeAll(async () => {
  const edge = await startTestEdge({ extensions: [status] })
  registry = edge.url
  client = createRegistryClient({ registry })
  // A small stand-in for `thaw base`: one layer, pushed as both default bases.
  const layer = await layerFromTar(
    appLayerTar([{ path: 'bin/fake-node', data: Buffer.from('x'), executable: true }], {
      root: '/usr',
    }),
  )
  baseLayer = layer.descriptor.digest
  const base = appendLayer(emptyImage(), layer, { cmd: ['node'], created: new Date(0) })
  await pushImage(client, 'thaw/node', 'latest', base)
  await pushImage(client, 'thaw/debian', 'latest', base)
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      puts.push({ path: req.url!, body: JSON.parse(body) })
      // What a host answers once the revision's node has loaded its functions (admin-revisions.ts).
      const app = req.url!.split('/')[3]
      const fn = {
        name: 'hello',
        path: 'api/hello',
        methods: ['GET', 'POST'],
        authLevel: 'anonymous',
      }
      const answer = {
        app,
        created: true,
        restarted: true,
        revision: { number: 1, functions: [fn] },
      }
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  hostUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  afterAll(() => new Promise((r) => server.close(r)))
})

afterAll(async () => {
  await client?.close()
})

async function app(template: string): Promise<string> {
  const dir = join(await tmpDir('thaw-deploy-app-'), 'sample')
  await initProject({ dir, template })
  return dir
}

describe('deployApp', () => {
  it('builds, pushes with the base layer reused, waits through the states to the artifact, and puts the app on the host by digest', async () => {
    const events: DeployEvent[] = []
    const result = await deployApp({
      appDir: await app('http-javascript'),
      registry,
      host: { url: hostUrl, masterKey: 'k' },
      waitTimeoutMs: 10_000,
      onEvent: (e) => events.push(e),
    })
    expect(result.name).toBe('sample')
    expect(result.reference).toBe(`${new URL(registry).host}/apps/sample@${result.digest}`)
    expect(result.reused.map((d) => d.digest)).toEqual([baseLayer])
    expect(result.uploaded).toHaveLength(2) // the app layer and the config
    expect(result.artifact).toBe(sha256Of(Buffer.from(result.digest)))
    expect(result.url).toBe(`${hostUrl}/sample/api/`)
    expect(
      events.filter((e) => e.type === 'artifact').map((e) => (e as { state: string }).state),
    ).toEqual(['pending', 'converting', 'converted'])
    expect(puts.at(-1)).toEqual({
      path: '/admin/apps/sample/revisions',
      body: { image: result.reference },
    })
    expect(result.revision).toBe(1)
    expect(result.functions).toEqual([
      { name: 'hello', methods: ['GET', 'POST'], url: `${hostUrl}/sample/api/hello` },
    ])
    const pulled = await pullImage(client, 'apps/sample', 'latest')
    expect(pulled.digest).toBe(result.digest)
    expect(pulled.manifest.layers[0]!.digest).toBe(baseLayer)
  })

  it('deploys a custom-handler app on the debian base with the handler as entrypoint, to the repository and tag asked for', async () => {
    const result = await deployApp({
      appDir: await app('custom-handler-python'),
      registry,
      image: 'team/py:v2',
      name: 'py',
      wait: false,
    })
    expect(result.reference).toMatch(/\/team\/py@sha256:/)
    expect(result.artifact).toBeUndefined()
    const pulled = await pullImage(client, 'team/py', 'v2')
    expect(pulled.config.config?.Entrypoint).toEqual(['python3', 'handler.py'])
    expect(pulled.config.config?.Labels?.['dev.thaw.app']).toBe('py')
  })

  it.each([
    // [options, what the error says]
    [{ image: 'apps/sample:latest' }, /--image REF --name APP/], // by reference without a name
    [{ image: 'apps/never-pushed:1', name: 'x' }, /is not in/], // an image the registry lacks
    [{ image: `apps/sample@${sha256Of(Buffer.from('other'))}`, name: 'x' }, /is not in/], // a digest the registry lacks
  ])('refuses to deploy by reference with %j', async (options, message) => {
    await expect(deployApp({ registry, wait: false, ...options })).rejects.toMatchObject({
      code: 'DEPLOY_OPTIONS_INVALID',
      message: expect.stringMatching(message),
    })
  })

  it('deploys an existing image by reference: resolves its digest, waits, tells the host', async () => {
    const pushed = await pullImage(client, 'apps/sample', 'latest')
    const result = await deployApp({
      registry,
      image: `${new URL(registry).host}/apps/sample:latest`,
      name: 'again',
      host: { url: hostUrl, masterKey: 'k' },
    })
    expect(result.digest).toBe(pushed.digest)
    expect(result.uploaded).toEqual([])
    expect(result.artifact).toBeDefined()
    expect(puts.at(-1)).toEqual({
      path: '/admin/apps/again/revisions',
      body: { image: result.reference },
    })
  })
})
