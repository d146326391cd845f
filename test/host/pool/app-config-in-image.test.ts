import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readImageAppConfig } from '../../../host/pool/app-config-in-image.ts'
import { tmpDir } from '../../support/tmp.ts'

async function imageRoot(hostJson: string | undefined): Promise<string> {
  const root = await tmpDir('thaw-app-config-')
  await mkdir(join(root, 'home/site/wwwroot'), { recursive: true })
  if (hostJson !== undefined) await writeFile(join(root, 'home/site/wwwroot/host.json'), hostJson)
  return root
}

const config = { architecture: 'amd64', os: 'linux', config: { WorkingDir: '/home/site/wwwroot' } }

describe('readImageAppConfig', () => {
  it('reads the customHandler section a custom-handler node is started from', async () => {
    const root = await imageRoot(
      JSON.stringify({
        version: '2.0',
        customHandler: {
          description: { defaultExecutablePath: 'handler', arguments: ['%MODE%'] },
          enableForwardingHttpRequest: true,
          port: '9000',
        },
      }),
    )
    const app = await readImageAppConfig(root, config as never)
    expect(app.customHandler).toEqual({
      executable: 'handler',
      arguments: ['%MODE%'],
      workingDirectory: undefined,
      enableForwardingHttpRequest: true,
      port: 9000,
    })
    expect([app.scriptRoot, app.routePrefix]).toEqual(['/home/site/wwwroot', 'api'])
  })

  it.each([
    // An @azure/functions app.
    ['{ "version": "2.0" }'],
    // No host.json at all: Azure's defaults.
    [undefined],
    // JSON that is not an object: treated as absent, like unreadable JSON.
    ['null'],
  ])('has no custom handler for host.json %s', async (hostJson) => {
    const app = await readImageAppConfig(await imageRoot(hostJson), config as never)
    expect(app.customHandler).toBeUndefined()
  })

  it('fails with CUSTOM_HANDLER_CONFIG_INVALID for a section without an executable', async () => {
    const root = await imageRoot('{ "customHandler": { "description": {} } }')
    await expect(readImageAppConfig(root, config as never)).rejects.toMatchObject({
      code: 'CUSTOM_HANDLER_CONFIG_INVALID',
    })
  })
})
