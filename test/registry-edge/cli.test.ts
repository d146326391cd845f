import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyPassword } from '../../registry-edge/auth/password-hash.ts'
import { parseEdgeConfig } from '../../registry-edge/config/edge-config.ts'
import { freePort, startProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')

/** Runs `thaw ...` to completion, whatever its exit code. */
async function thaw(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(THAW, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdin.end(input)
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

describe('edge config', () => {
  it('fills defaults', () => {
    expect(parseEdgeConfig({})).toMatchObject({ host: '127.0.0.1', port: 5000, region: 'local', deletion: true })
    expect(parseEdgeConfig({})).toMatchObject({
      uploadTtlSeconds: 3600,
      uploads: { maxBlobBytes: 4 * 2 ** 30, maxSessions: 1024, maxSessionsPerClient: 64, sweepIntervalSeconds: 60 },
    })
    expect(parseEdgeConfig({ uploads: { maxSessionsPerClient: 8 } }).uploads).toMatchObject({ maxSessions: 1024, maxSessionsPerClient: 8 })
  })

  it.each([
    // config mistakes, each named in the error
    [{ port: 70000 }, /port: /], // out of range
    [{ prot: 5000 }, /prot/], // typo: unknown fields are errors, not ignored
    [{ region: 'eu west' }, /region: a region is/], // space in a region
    [{ upstream: 'ftp://x' }, /upstream: /], // only http(s) upstreams
    [{ proxy: { tagTtlSeconds: -1 } }, /proxy\.tagTtlSeconds/], // a negative TTL
    [{ proxy: { diskCacheMiB: 0 } }, /proxy\.diskCacheMiB/], // a cache must hold something
    [{ proxy: { ttl: 5 } }, /proxy.*ttl/], // typo in the proxy section
    [{ uploads: { maxBlobBytes: 0 } }, /uploads\.maxBlobBytes/], // no blob could be pushed
    [{ uploads: { maxSessions: 1.5 } }, /uploads\.maxSessions/], // a count is a whole number
    [{ uploads: { maxBlobSize: 5 } }, /uploads.*maxBlobSize/], // typo in the uploads section
    [{ auth: { users: { alice: { password: 'plain' } } } }, /auth\.users\.alice\.password: must be a hash/],
    [{ auth: { access: [{ repository: 'Apps/*', actions: ['pull'] }] } }, /auth\.access\.0\.repository/],
    [{ auth: { access: [{ repository: 'apps', actions: ['read'] }] } }, /auth\.access\.0\.actions\.0/],
    [{ auth: { tokenKey: 'k'.repeat(32) } }, /auth\.service: a tokenKey needs a service/], // tokens need a named audience
    [{ auth: { loginLimits: { maxConcurrentChecks: 0 } } }, /auth\.loginLimits\.maxConcurrentChecks/], // no login could be checked
    [{ auth: { loginLimits: { backoff: 1 } } }, /auth\.loginLimits.*backoff/], // typo in loginLimits
  ])('rejects %j with a clear message', (input, message) => {
    expect(() => parseEdgeConfig(input)).toThrow(message)
  })
})

describe('thaw edge', () => {
  it('prints its usage with --help', async () => {
    const { code, stdout } = await thaw(['edge', '--help'])
    expect(code).toBe(0)
    expect(stdout).toContain('--store DIR')
  })

  it('starts in proxy mode with --upstream, and answers 502 UNAVAILABLE while the upstream is down', async () => {
    const port = await freePort()
    const edge = startProcess(THAW, ['edge', '--port', String(port), '--upstream', 'http://127.0.0.1:1', '--store', await tmpDir()])
    await edge.waitFor(/"msg":"listening".*"upstream":"http:\/\/127\.0\.0\.1:1"/)
    const res = await fetch(`http://127.0.0.1:${port}/v2/apps/hello/manifests/v1`)
    expect(res.status).toBe(502)
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAVAILABLE')
    await edge.stop()
  })

  it('reports a bad flag or config file in one line and exits 2', async () => {
    const bad = await thaw(['edge', '--port', 'eighty'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/invalid edge config: port: /)
    const dir = await tmpDir()
    await writeFile(join(dir, 'edge.json'), '{"port": 5000,}')
    const file = await thaw(['edge', '--config', join(dir, 'edge.json')])
    expect(file.code).toBe(2)
    expect(file.stderr).toContain('is not valid JSON')
    const unknown = await thaw(['edge', '--nope'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("Unknown option '--nope'")
  })

  it('hashes a password from stdin for the auth config', async () => {
    const { code, stdout } = await thaw(['edge', 'hash-password'], 's3cret\n')
    expect(code).toBe(0)
    expect(await verifyPassword('s3cret', stdout.trim())).toBe(true)
  })

  it('lets flags override the config file, logs as JSON, and shuts down gracefully on SIGTERM', async () => {
    const dir = await tmpDir()
    const port = await freePort()
    await writeFile(join(dir, 'edge.json'), JSON.stringify({ port: 1, region: 'from-file', store: join(dir, 'store') }))
    const edge = startProcess(THAW, ['edge', '--config', join(dir, 'edge.json'), '--port', String(port)])
    await edge.waitFor(/"msg":"listening"/)
    const res = await fetch(`http://127.0.0.1:${port}/v2/`)
    expect(res.status).toBe(200)
    await edge.waitFor(/"msg":"request"/)
    const request = JSON.parse(edge.output().split('\n').find((l) => l.includes('"msg":"request"'))!)
    expect(request).toMatchObject({ method: 'GET', path: '/v2/', status: 200, bytes: 2, region: 'from-file' })
    process.kill(edge.pid, 'SIGTERM')
    expect(await edge.exited).toBe(0)
    expect(edge.output()).toContain('"msg":"stopped"')
  })

  it('checks a store and says whether it is consistent', async () => {
    const dir = await tmpDir()
    const { code, stdout } = await thaw(['edge', 'check-store', '--store', dir])
    expect(code).toBe(0)
    expect(stdout).toContain('store is consistent')
  })
})
