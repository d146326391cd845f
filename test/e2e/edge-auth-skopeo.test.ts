import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestImage, readLayoutImage, type TestImage } from '../support/edge-image.ts'
import { freePort, run, startProcess, type TestProcess } from '../support/processes.ts'
import { tmpDir } from '../support/tmp.ts'

const THAW = resolve(import.meta.dirname, '../../bin/thaw')
let image: TestImage
let edge: TestProcess
let address: string

beforeAll(async () => {
  image = await buildTestImage({ layers: 2, layerBytes: 256 * 1024 })
  const { stdout: hash } = await run(THAW, ['edge', 'hash-password'], { input: 's3cret\n' })
  const dir = await tmpDir('thaw-edge-auth-')
  const config = join(dir, 'edge.json')
  await writeFile(
    config,
    JSON.stringify({
      auth: {
        users: { alice: { password: hash.trim() }, bob: { password: hash.trim() } },
        access: [
          { repository: 'apps/**', users: ['alice'], actions: ['pull', 'push'] },
          { repository: 'apps/**', users: ['bob'], actions: ['pull'] },
        ],
      },
    }),
  )
  const port = await freePort()
  edge = startProcess(THAW, ['edge', '--port', String(port), '--store', join(dir, 'store'), '--config', config])
  await edge.waitFor(/"msg":"listening"/)
  address = `127.0.0.1:${port}`
})

afterAll(async () => {
  await edge?.stop()
})

const skopeoCopy = (from: string, to: string, ...flags: string[]) =>
  run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...flags, from, to])

describe('skopeo against an edge with auth', () => {
  it('follows the 401 challenge to the edge token endpoint and pushes with credentials that allow it', async () => {
    await skopeoCopy(`oci:${image.layout}:${image.tag}`, `docker://${address}/apps/hello:${image.tag}`, '--dest-creds', 'alice:s3cret')
    const out = join(await tmpDir('thaw-pulled-'), 'layout')
    await skopeoCopy(`docker://${address}/apps/hello:${image.tag}`, `oci:${out}:${image.tag}`, '--src-creds', 'bob:s3cret')
    expect((await readLayoutImage(out, image.tag)).digest).toBe((await readLayoutImage(image.layout, image.tag)).digest)
  })

  // Each row: credentials that must not get the image in, or out.
  it.each([
    ['anonymous pull', 'pull', []],
    ['pull with a wrong password', 'pull', ['--src-creds', 'bob:wrong']],
    ['push by a user with pull only', 'push', ['--dest-creds', 'bob:s3cret']],
    ['anonymous push', 'push', []],
  ] as const)('refuses %s', async (_name, direction, flags) => {
    const pull = direction === 'pull'
    const from = pull ? `docker://${address}/apps/hello:${image.tag}` : `oci:${image.layout}:${image.tag}`
    const to = pull ? `oci:${join(await tmpDir('thaw-denied-'), 'layout')}:x` : `docker://${address}/apps/denied:${image.tag}`
    await expect(skopeoCopy(from, to, ...flags)).rejects.toThrow(/unauthorized|denied|authentication required|invalid username\/password/i)
  })
})
