import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const MANIFESTS = resolve(import.meta.dirname, '../../deploy/kubernetes')
const onPath = (c: string) => process.env.PATH!.split(':').some((d) => existsSync(join(d, c)))

/**
 * kubectl maps each document's apiVersion and kind to a resource through the API server's
 * discovery before a client-side dry run, even with --validate=false. No cluster here: this
 * loopback server answers discovery only (the kinds the manifests use), nothing else.
 */
const CORE = ['namespaces', 'services', 'configmaps', 'secrets', 'persistentvolumeclaims']
const APPS = ['deployments', 'daemonsets']
const KIND: Record<string, string> = {
  namespaces: 'Namespace',
  services: 'Service',
  configmaps: 'ConfigMap',
  secrets: 'Secret',
  persistentvolumeclaims: 'PersistentVolumeClaim',
  deployments: 'Deployment',
  daemonsets: 'DaemonSet',
}
const resources = (groupVersion: string, names: string[]) => ({
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion,
  resources: names.map((name) => ({
    name,
    singularName: KIND[name]!.toLowerCase(),
    namespaced: name !== 'namespaces',
    kind: KIND[name],
    verbs: ['create', 'get', 'list', 'delete', 'patch', 'update'],
  })),
})
const DISCOVERY: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [
      {
        name: 'apps',
        versions: [{ groupVersion: 'apps/v1', version: 'v1' }],
        preferredVersion: { groupVersion: 'apps/v1', version: 'v1' },
      },
    ],
  },
  '/api/v1': resources('v1', CORE),
  '/apis/apps/v1': resources('apps/v1', APPS),
}

describe.skipIf(!onPath('kubectl'))('deploy/kubernetes manifests', () => {
  let server: Server
  let url: string
  beforeAll(async () => {
    server = createServer((req, res) => {
      const body = DISCOVERY[new URL(req.url!, 'http://x').pathname]
      if (!body) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise((r) => server?.close(r)))

  it('kubectl reads every document (create --dry-run=client --validate=false -o yaml)', async () => {
    const cache = await tmpDir('thaw-kubectl-cache-')
    const { stdout } = await run('kubectl', [
      '--server',
      url,
      '--cache-dir',
      cache,
      'create',
      '--dry-run=client',
      '--validate=false',
      '-o',
      'yaml',
      '-f',
      MANIFESTS,
    ])
    const kinds = [...stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]).sort()
    expect(kinds).toEqual(
      [
        'ConfigMap',
        'DaemonSet',
        'Deployment',
        'Deployment',
        'Namespace',
        'PersistentVolumeClaim',
        'PersistentVolumeClaim',
        'Service',
        'Service',
      ].sort(),
    )
    // What the snapshotter needs on the node survives kubectl's reading of the file.
    expect(stdout).toContain('mountPropagation: Bidirectional')
    expect(stdout).toContain('path: /run/thaw')
    expect(stdout).toContain('claimName: thaw-edge-store')
    expect(stdout).toMatch(
      /\[proxy_plugins\.thaw\][\s\S]*address = "\/run\/thaw\/snapshotter\.sock"/,
    )
  })
})
