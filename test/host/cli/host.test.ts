import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isThawError } from '../../../runtime/errors.ts'
import { edgeFor } from '../../../host/cli/command.ts'
import { parseHostFlags } from '../../../host/cli/host.ts'

const THAW = resolve(import.meta.dirname, '../../../bin/thaw')

function thaw(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(THAW, args, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('thaw host flags', () => {
  it('defaults to port 7071, 2 warm nodes, ./.thaw-host, no edges', () => {
    expect(parseHostFlags([])).toEqual({
      help: false,
      port: 7071,
      hostname: '127.0.0.1',
      edges: [],
      pool: 2,
      profiles: true,
      state: '.thaw-host',
      masterKey: undefined,
      metricsKey: undefined,
      maxConnections: 4096,
      maxConnectionsPerAddress: 256,
      limits: undefined,
      userNamespaces: 'auto',
      orphanTimeout: 300,
    })
  })

  it('takes repeated --edge, --pool, --state and --master-key', () => {
    const f = parseHostFlags(
      ['--port', '0', '--edge', 'http://a:5000', '--edge', 'http://b:5000', '--pool', '0'].concat([
        '--state',
        '/tmp/s',
        '--master-key',
        'k'.repeat(20),
      ]),
    )
    expect(f).toMatchObject({ port: 0, edges: ['http://a:5000', 'http://b:5000'], pool: 0 })
    expect(f).toMatchObject({ state: '/tmp/s', masterKey: 'k'.repeat(20) })
  })

  it('turns profiles off with --no-profiles', () => {
    expect(parseHostFlags(['--no-profiles'])).toMatchObject({ profiles: false })
  })

  it('takes --metrics-key and the connection caps', () => {
    const f = parseHostFlags(
      ['--metrics-key', 'm'.repeat(16), '--max-connections', '100'].concat([
        '--max-connections-per-address',
        '10',
      ]),
    )
    expect(f).toMatchObject({ metricsKey: 'm'.repeat(16), maxConnections: 100 })
    expect(f).toMatchObject({ maxConnectionsPerAddress: 10 })
  })

  it('takes --orphan-timeout in seconds, 0 for a node that waits for a host forever', () => {
    expect(parseHostFlags(['--orphan-timeout', '2']).orphanTimeout).toBe(2)
    expect(parseHostFlags(['--orphan-timeout', '0']).orphanTimeout).toBe(0)
  })

  it.each([
    [['--port', '70000'], /--port must be a whole number/], // out of range
    [['--port', '1.5'], /--port must be a whole number/], // not an integer
    [['--pool=-1'], /--pool must be a whole number/], // negative
    [['--edge', 'ftp://x'], /--edge must be an http\(s\) URL/], // wrong scheme
    [['--edge', 'nope'], /--edge must be an http\(s\) URL/], // not a URL
    [['--master-key', 'short'], /at least 16/], // too short to be a secret
    [['--metrics-key', 'short'], /at least 16/], // too short to be a secret
    [['--metrics-key', 'a key with spaces in it'], /none of them spaces/], // not a bearer token
    [['--max-connections', '0'], /--max-connections must be a whole number/], // would refuse all
    [['--max-connections-per-address', 'x'], /per-address must be a whole number/], // not a number
    [['--user-namespaces', 'maybe'], /auto, required or off/], // not a policy
    [['--orphan-timeout=-5'], /--orphan-timeout must be a whole number/], // negative
    [['--bogus'], /Unknown option/], // unknown flag
  ])('refuses %j with a user error', (argv, message) => {
    let err: unknown
    try {
      parseHostFlags(argv)
    } catch (e) {
      err = e
    }
    expect(isThawError(err, 'OPTIONS_INVALID')).toBe(true)
    expect((err as Error).message).toMatch(message)
  })

  it('picks the edge at the image registry host, else the first, else the registry itself', () => {
    const edges = ['http://a:5000', 'http://b:5000']
    expect(edgeFor(edges, 'b:5000')).toBe('http://b:5000')
    expect(edgeFor(edges, 'c:5000')).toBe('http://a:5000')
    expect(edgeFor([], 'c:5000')).toBe('http://c:5000')
  })
})

describe('thaw host command', () => {
  it('prints its options with --help', async () => {
    const run = await thaw(['host', '--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/--edge <url>/)
  })

  it('exits 2 with one line for a bad flag', async () => {
    const run = await thaw(['host', '--pool', 'lots'])
    expect(run.code).toBe(2)
    expect(run.stderr).toBe('thaw host: --pool must be a whole number from 0 to 1000, not "lots"\n')
  })
})
