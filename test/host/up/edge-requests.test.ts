import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { edgeTraffic, logOffset } from '../../../host/up/edge-requests.ts'
import { tmpDir } from '../../support/tmp.ts'

const line = (method: string, path: string, status: number, bytes: number) =>
  `${JSON.stringify({ time: 't', level: 'info', msg: 'request', region: 'local', method, path, status, bytes })}\n`

describe('edgeTraffic', () => {
  it('counts 2xx GETs of one repository after an offset, by kind', async () => {
    const file = join(await tmpDir(), 'edge.log')
    await writeFile(file, line('GET', '/v2/apps/a/blobs/sha256:1', 206, 100))
    const from = await logOffset(file)
    await writeFile(
      file,
      [
        line('GET', '/v2/apps/a/_thaw/bundle/sha256:m', 404, 50), // no profile yet: not a bundle
        line('GET', '/v2/apps/a/_thaw/bundle/sha256:m', 200, 1000),
        line('GET', '/v2/apps/a/blobs/sha256:1', 206, 10),
        line('GET', '/v2/apps/a/manifests/sha256:m', 200, 5),
        line('HEAD', '/v2/apps/a/blobs/sha256:1', 200, 0),
        line('GET', '/v2/apps/b/blobs/sha256:2', 206, 7), // another repository
        '{"msg":"listening"}\n',
        '{"msg":"requ', // cut mid-line
      ].join(''),
      { flag: 'a' },
    )
    expect(await edgeTraffic(file, 'apps/a', from)).toEqual({ bundles: 1, blobReads: 1, other: 1, bytes: 1015 })
  })
})
