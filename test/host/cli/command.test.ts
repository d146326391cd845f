import { execFile } from 'node:child_process'
import { readFile, readlink, symlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { closest } from '../../../host/cli/closest.ts'
import { describeUnreachable } from '../../../host/cli/unreachable.ts'
import { freePort } from '../../support/processes.ts'
import { tmpDir } from '../../support/tmp.ts'

const ROOT = resolve(import.meta.dirname, '../../..')
const THAW = join(ROOT, 'bin/thaw')

function run(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** One line on stderr, nothing that looks like a stack frame. */
function oneLine(stderr: string): string {
  expect(stderr.endsWith('\n')).toBe(true)
  expect(stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(stderr).not.toMatch(/^\s+at /m)
  return stderr.trimEnd()
}

describe('closest', () => {
  it.each([
    ['strat', 'start'], // two letters swapped
    ['deplyo', 'deploy'], // swapped at the end
    ['hots', 'host'], // swapped in a short word
    ['ini', 'init'], // a letter missing
    ['Edge', 'edge'], // case
    ['mou', 'mount'], // the start of exactly one command
  ])('takes %j for %j', (typed, meant) => {
    expect(closest(typed, ['up', 'edge', 'start', 'host', 'mount', 'init', 'deploy', 'base'])).toBe(
      meant,
    )
  })

  it('suggests nothing for a word far from every command', () => {
    expect(closest('frobnicate', ['up', 'edge', 'start', 'deploy'])).toBeUndefined()
  })
})

describe('the thaw command line', () => {
  it('prints its version with --version', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      version: string
    }
    const r = await run(THAW, ['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`thaw ${pkg.version} (Node.js ${process.version})\n`)
  })

  it('says which command a mistyped one probably meant, in one line, exit 2', async () => {
    const r = await run(THAW, ['strat'])
    expect(r.code).toBe(2)
    expect(oneLine(r.stderr)).toBe(
      'thaw: unknown command "strat"; did you mean "thaw start"? (the commands: thaw --help)',
    )
  })

  it('names an unknown flag in one line, exit 2', async () => {
    const r = await run(THAW, ['deploy', '--hots', 'http://127.0.0.1:1'])
    expect(r.code).toBe(2)
    expect(oneLine(r.stderr)).toBe(
      `thaw deploy: Unknown option '--hots'; run "thaw deploy --help" for its options`,
    )
  })

  it('says a host or registry it cannot reach in one line, no stack, exit 2', async () => {
    const port = await freePort() // nothing listens there
    const cwd = await tmpDir() // no app here: the image is deployed by reference
    const r = await new Promise<{ code: number; stderr: string }>((done) => {
      const args = ['deploy', '--image', `127.0.0.1:${port}/apps/x:1`, '--name', 'x']
      args.push('--host', `http://127.0.0.1:${port}`, '--master-key', 'k'.repeat(20))
      execFile(THAW, args, { cwd }, (err, _out, stderr) =>
        done({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
      )
    })
    expect(r.code).toBe(2)
    expect(oneLine(r.stderr)).toBe(
      `thaw deploy: cannot reach 127.0.0.1:${port} (connection refused: nothing listens there)`,
    )
  })

  it('finds the socket\'s errno under fetch\'s "fetch failed"', async () => {
    const port = await freePort()
    const err: unknown = await fetch(`http://127.0.0.1:${port}/admin/apps`).catch((e: unknown) => e)
    expect((err as Error).message).toBe('fetch failed')
    expect(describeUnreachable(err)).toBe(
      `cannot reach 127.0.0.1:${port} (connection refused: nothing listens there)`,
    )
    expect(describeUnreachable(new Error('a bug'))).toBeUndefined()
  })

  it('says a registry it cannot reach in one line, before building anything, exit 2', async () => {
    const port = await freePort()
    const out = join(await tmpDir(), 'base')
    const r = await run(THAW, [
      'base',
      'node',
      '--registry',
      `http://127.0.0.1:${port}`,
      '--out',
      out,
    ])
    expect(r.code).toBe(2)
    expect(oneLine(r.stderr)).toBe(
      `thaw base: cannot reach 127.0.0.1:${port} (connection refused: nothing listens there)`,
    )
    await expect(readFile(join(out, 'base.json'))).rejects.toThrow(/ENOENT/) // nothing was built
  })

  it('is on PATH after scripts/install.sh, as a link that works from any folder (idempotent)', async () => {
    const bin = await tmpDir()
    for (let i = 0; i < 2; i++) {
      const r = await run(join(ROOT, 'scripts/install.sh'), [], { THAW_BIN_DIR: bin })
      expect(r.code).toBe(0)
    }
    expect(await readlink(join(bin, 'thaw'))).toBe(THAW)
    const r = await run('thaw', ['--version'], { PATH: `${bin}:${process.env.PATH}` })
    expect(r.stdout).toMatch(/^thaw \d+\.\d+\.\d+/)
  })

  it('leaves a link to another working checkout alone', async () => {
    const bin = await tmpDir()
    const other = join(await tmpDir(), 'thaw')
    await symlink('/bin/true', other)
    await symlink(other, join(bin, 'thaw'))
    const r = await run(join(ROOT, 'scripts/install.sh'), [], { THAW_BIN_DIR: bin })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/already runs \/(usr\/)?bin\/true; left as it is/)
    expect(await readlink(join(bin, 'thaw'))).toBe(other)
  })
})
