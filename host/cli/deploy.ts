import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { deployApp } from '../deploy/deploy-app.ts'
import { deployReporter } from '../deploy/deploy-output.ts'
import { DeployError } from '../deploy/errors.ts'
import { flagProblem, registryCredentials } from './command.ts'

const USAGE = `usage: thaw deploy [options]                 build the app folder here into an image, push, deploy
       thaw deploy --image REF --name APP ...   deploy an image pushed by any client (no build)

options:
      --registry URL      the registry edge (default: the image's registry, else http://127.0.0.1:5000)
      --image REF         where to push (repo[:tag], default apps/<name>:latest), or the image to deploy
      --base REF          the base image on that registry (default thaw/node:latest for @azure/functions
                          apps, thaw/debian:latest for custom handlers; "thaw base" pushes them)
      --name APP          app name (default: package.json name, else the folder name)
      --dir DIR           the app folder (default: the current folder)
      --host URL          deploy a new revision of the app to this host (needs --master-key);
                          the host starts it and loads its functions before it takes traffic
      --master-key K      the host's master key (or THAW_MASTER_KEY)
      --setting K=V       set an app setting (repeatable); the app's other settings carry over
      --unset K           remove an app setting (repeatable)
      --no-wait           do not wait for the streaming artifact
                          (registry credentials: THAW_REGISTRY_USERNAME and THAW_REGISTRY_PASSWORD)
      --timeout S         how long to wait for it (default 120)
  -h, --help              this help
`

/** `thaw deploy`. */
export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        registry: { type: 'string' },
        image: { type: 'string' },
        base: { type: 'string' },
        name: { type: 'string' },
        dir: { type: 'string' },
        host: { type: 'string' },
        'master-key': { type: 'string' },
        setting: { type: 'string', multiple: true },
        unset: { type: 'string', multiple: true },
        'no-wait': { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new DeployError('DEPLOY_OPTIONS_INVALID', flagProblem('deploy', err))
  }
  const v = parsed.values
  if (v.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const masterKey = v['master-key'] ?? process.env.THAW_MASTER_KEY
  if (!v.host && (v.setting || v.unset))
    throw new DeployError('DEPLOY_OPTIONS_INVALID', '--setting and --unset need --host')
  if (v.host && !masterKey)
    throw new DeployError(
      'DEPLOY_OPTIONS_INVALID',
      '--host needs --master-key (or THAW_MASTER_KEY)',
    )
  const timeout = v.timeout === undefined ? 120 : Number(v.timeout)
  if (!(timeout > 0))
    throw new DeployError('DEPLOY_OPTIONS_INVALID', '--timeout must be a number of seconds')
  // With --image and --name outside an app folder, the image is deployed as it is (no build).
  const byReference =
    v.image !== undefined &&
    v.name !== undefined &&
    v.dir === undefined &&
    !existsSync(join(process.cwd(), 'host.json'))
  const settings = parseSettings(v.setting ?? [])
  const result = await deployApp({
    registry: v.registry,
    appDir: byReference ? undefined : (v.dir ?? process.cwd()),
    image: v.image,
    base: v.base,
    name: v.name,
    host: v.host ? { url: v.host, masterKey: masterKey!, settings, unset: v.unset } : undefined,
    wait: !v['no-wait'],
    credentials: registryCredentials(),
    waitTimeoutMs: timeout * 1000,
    onEvent: deployReporter(process.stderr),
  })
  process.stdout.write(`${result.reference}\n`)
  if (result.artifact) process.stderr.write(`Streaming artifact ${result.artifact}\n`)
  return 0
}

function parseSettings(pairs: string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0)
      throw new DeployError('DEPLOY_OPTIONS_INVALID', `--setting ${pair}: expected NAME=VALUE`)
    out[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return out
}
