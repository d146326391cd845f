import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initProject } from '../../host/init/init-project.ts'
import { tarEntries } from '../support/tar-entries.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
// Built once per machine (node-base.ts reuses a build whose inputs did not change).
const BASE_CACHE = '/var/tmp/thaw-cache/base-node-deploy-e2e'

let edge: TestProcess
let registry: string
let address: string
let appDir: string
let host: {
  url: string
  puts: Array<{ path: string; key: string | undefined; body: { image: string } }>
  server: Server
}

interface EdgeRequest {
  method: string
  path: string
  status: number
}

/** The edge's request log lines (JSON, one a line) written since `from`. */
function requestsSince(from: number): EdgeRequest[] {
  return edge
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as EdgeRequest)
}

beforeAll(async () => {
  const port = await freePort()
  edge = startProcess(THAW, [
    'edge',
    '--port',
    String(port),
    '--store',
    await tmpDir('thaw-deploy-edge-'),
  ])
  await edge.waitFor(/"msg":"listening"/)
  address = `127.0.0.1:${port}`
  registry = `http://${address}`
  appDir = join(await tmpDir('thaw-deploy-e2e-'), 'hello')
  await initProject({ dir: appDir, template: 'http-typescript' })
  // A fake host admin API: records what thaw deploy sends (the real one lives on the host branch).
  const puts: typeof host.puts = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      puts.push({
        path: req.url!,
        key: req.headers['x-functions-key'] as string | undefined,
        body: JSON.parse(body),
      })
      // What a host answers once the revision's node has loaded its functions (admin-revisions.ts).
      const fn = { name: 'hello', path: 'api/hello', methods: ['GET', 'POST'], authLevel: 'anonymous' }
      const revision = { number: puts.length, functions: [fn] }
      const answer = { app: req.url!.split('/')[3], created: puts.length === 1, restarted: true, revision }
      res.writeHead(puts.length === 1 ? 201 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  host = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, puts, server }
})

afterAll(async () => {
  await new Promise((r) => host?.server.close(r))
})

async function skopeoJson(args: string[]): Promise<any> {
  return JSON.parse((await run('skopeo', [...args, '--tls-verify=false'])).stdout)
}

describe('thaw base and thaw deploy against a real edge', () => {
  let baseDigest: string
  let baseLayers: string[]

  it('thaw base node builds the Node.js base from this machine’s node and pushes it', async () => {
    await mkdir(BASE_CACHE, { recursive: true })
    const before = edge.output().length
    const { stdout } = await run(THAW, [
      'base',
      'node',
      '--registry',
      registry,
      '--out',
      BASE_CACHE,
    ])
    // The node base layer (tens of MiB) is past the client's 16 MiB monolithic limit: chunked.
    const patches = requestsSince(before).filter(
      (r) => r.method === 'PATCH' && r.path.startsWith('/v2/thaw/node/blobs/uploads/'),
    )
    expect(patches.length).toBeGreaterThan(1)
    const m = stdout.trim().match(/^127\.0\.0\.1:\d+\/thaw\/node@(sha256:[0-9a-f]{64})$/)
    expect(m, stdout).not.toBeNull()
    baseDigest = m![1]!
    const raw = await skopeoJson(['inspect', '--raw', `docker://${address}/thaw/node:latest`])
    baseLayers = raw.layers.map((l: { digest: string }) => l.digest)
    expect(baseLayers).toHaveLength(1)
    const config = await skopeoJson(['inspect', '--config', `docker://${address}/thaw/node:latest`])
    expect(config.config.Cmd).toEqual(['node'])
  }, 300_000)

  it('deploys the http-typescript app as the base layers plus one app layer, without sending the base again', async () => {
    const before = edge.output().length
    const { stdout, stderr } = await run(
      THAW,
      ['deploy', '--registry', registry, '--no-wait', '--host', host.url, '--master-key', 'mk'],
      { cwd: appDir },
    )
    const reference = stdout.trim()
    expect(reference).toMatch(/^127\.0\.0\.1:\d+\/apps\/hello@sha256:[0-9a-f]{64}$/)
    expect(stderr).toMatch(/Pushed .*apps\/hello:latest: 2 blob\(s\) uploaded .* 1 reused/)
    // It ends as func azure functionapp publish does: the functions and their URLs.
    expect(stderr).toContain(`Functions in hello:\n    hello - [httpTrigger]\n        Invoke url: ${host.url}/hello/api/hello\n`)
    // Not a TTY: plain lines, no carriage returns of a progress bar.
    expect(stderr).not.toContain('\r')

    const requests = requestsSince(before)
    // The base layer is mounted from thaw/node (201 to the POST), never uploaded: two uploads
    // finish (the app layer and the config), each with one PUT.
    const mounts = requests.filter(
      (r) => r.method === 'POST' && r.path === '/v2/apps/hello/blobs/uploads/' && r.status === 201,
    )
    const uploads = requests.filter(
      (r) => r.method === 'PUT' && r.path.startsWith('/v2/apps/hello/blobs/uploads/'),
    )
    expect(mounts).toHaveLength(baseLayers.length)
    expect(uploads).toHaveLength(2)
    expect(requests.filter((r) => r.method === 'PATCH')).toHaveLength(0)
    expect(
      requests.some((r) => r.method === 'GET' && baseLayers.some((d) => r.path.endsWith(d))),
    ).toBe(false)

    // skopeo reads it as a valid OCI image: base layers first, then one app layer.
    const digest = reference.split('@')[1]!
    const raw = await skopeoJson(['inspect', '--raw', `docker://${address}/apps/hello:latest`])
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(raw.layers.map((l: { digest: string }) => l.digest).slice(0, -1)).toEqual(baseLayers)
    expect(raw.layers).toHaveLength(baseLayers.length + 1)
    const config = await skopeoJson([
      'inspect',
      '--config',
      `docker://${address}/apps/hello@${digest}`,
    ])
    expect(config.config.Entrypoint).toEqual(['node', '/.thaw/worker/worker.mjs'])
    expect(config.config.WorkingDir).toBe('/home/site/wwwroot')
    expect(config.config.Labels['dev.thaw.app']).toBe('hello')
    expect(config.rootfs.diff_ids).toHaveLength(baseLayers.length + 1)

    // skopeo copy verifies every blob against its digest; the app layer holds the built app.
    const layout = join(await tmpDir('thaw-deploy-pulled-'), 'layout')
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${address}/apps/hello@${digest}`,
      `oci:${layout}:app`,
    ])
    const top = raw.layers.at(-1).digest.replace('sha256:', '')
    const names = tarEntries(await readFile(join(layout, 'blobs/sha256', top))).map(
      (e) => e.header.name,
    )
    expect(names).toContain('home/site/wwwroot/dist/src/functions/hello.js')
    expect(names).toContain('home/site/wwwroot/node_modules/@azure/functions/package.json')
    expect(names).not.toContain('home/site/wwwroot/local.settings.json')

    // The host was told the image by digest.
    expect(host.puts.at(-1)).toEqual({
      path: '/admin/apps/hello/revisions',
      key: 'mk',
      body: { image: reference },
    })
    expect(baseDigest).toMatch(/^sha256:/)
  })

  it('gives the same digest when the same folder is deployed again, and uploads nothing', async () => {
    const first = host.puts.at(-1)!.body.image
    const before = edge.output().length
    const { stdout } = await run(THAW, ['deploy', '--registry', registry, '--no-wait'], {
      cwd: appDir,
    })
    expect(stdout.trim()).toBe(first)
    expect(
      requestsSince(before).filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/')),
    ).toHaveLength(0)
  })

  it('deploys an image pushed by another client (skopeo) by reference, without an app folder', async () => {
    await run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${address}/apps/hello:latest`,
      `docker://${address}/other/img:v1`,
    ])
    const expected = (await skopeoJson(['inspect', `docker://${address}/other/img:v1`])).Digest
    const elsewhere = await tmpDir('thaw-deploy-noapp-')
    const { stdout } = await run(
      THAW,
      [
        'deploy',
        '--image',
        `${address}/other/img:v1`,
        '--name',
        'other',
        '--no-wait',
        '--host',
        host.url,
        '--master-key',
        'mk',
      ],
      { cwd: elsewhere },
    )
    expect(stdout.trim()).toBe(`${address}/other/img@${expected}`)
    expect(host.puts.at(-1)).toEqual({
      path: '/admin/apps/other/revisions',
      key: 'mk',
      body: { image: `${address}/other/img@${expected}` },
    })
  })

  it('says which base is missing and how to push it', async () => {
    const result = await run(
      THAW,
      ['deploy', '--registry', registry, '--no-wait', '--base', 'thaw/none:1'],
      { cwd: appDir },
    ).catch((e: Error) => e)
    expect(result).toBeInstanceOf(Error)
    expect((result as Error).message).toMatch(
      /the base image thaw\/none:1 is not in .*thaw base node/,
    )
  })

  it('waits for the streaming artifact: a clear ARTIFACT_TIMEOUT on an edge that makes none, the artifact where it converts', async () => {
    // main's edge has no conversion yet (the status extension answers 404 UNSUPPORTED); once it
    // has, the same deploy must end with the artifact instead.
    const probe = await fetch(`${registry}/v2/apps/hello/_thaw/status/sha256:${'0'.repeat(64)}`)
    const converts = !(probe.status === 404 && (await probe.text()).includes('UNSUPPORTED'))
    const result = await run(
      THAW,
      ['deploy', '--registry', registry, '--timeout', converts ? '60' : '1'],
      { cwd: appDir },
    ).catch((e: Error) => e)
    if (converts) {
      expect(result).not.toBeInstanceOf(Error)
      expect((result as { stderr: string }).stderr).toMatch(
        /Streaming artifact sha256:[0-9a-f]{64}/,
      )
    } else {
      expect(result).toBeInstanceOf(Error)
      expect((result as Error).message).toMatch(
        /the image is pushed, but its streaming artifact did not appear within 1\.0 s \(last state: waiting for a referrer\).*--no-wait/,
      )
    }
  })
})
