import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listenControl } from '../../../host/worker/control-server.ts'
import { tmpDir } from '../../support/tmp.ts'

describe('listenControl', () => {
  it('refuses a socket path longer than a unix socket may have, saying what to do', async () => {
    const dir = join(await tmpDir('thaw-control-'), 'x'.repeat(120))
    await expect(listenControl(join(dir, 'c.sock'))).rejects.toMatchObject({
      code: 'SOCKET_PATH_TOO_LONG',
      fault: 'user',
      message: expect.stringMatching(/shorter state directory/),
    })
  })

  it('listens on a path of the longest length allowed', async () => {
    const base = await tmpDir('thaw-control-')
    const path = join(base, 'c'.repeat(107 - Buffer.byteLength(base) - 1))
    const server = await listenControl(path)
    expect(server.path).toHaveLength(107)
    await server.close()
  })
})
