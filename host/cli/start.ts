import { parseArgs } from 'node:util'
import { flagProblem, untilSignal } from './command.ts'
import { resolve } from 'node:path'
import { FUNCTIONS_HOST_VERSION } from '../../runtime/protocol/worker-contract.ts'
import { generateKey, readSecretsDir, type KeySet } from '../router/index.ts'
import { readAppConfig } from '../local/app-config.ts'
import {
  createRunner,
  formatEvent,
  formatFunctionList,
  LocalRunnerError,
  type Runner,
} from '../local/index.ts'

const USAGE = `usage: thaw start [options]

Runs the function app in the current folder (or --script-root) locally, like func start:
TypeScript sources load directly (no build step), and code changes reload without dropping
requests.

options:
  -p, --port <n>          port to listen on (default: local.settings.json Host.LocalHttpPort, or 7071)
      --cors <origins>    comma-separated CORS origins ("*" for any)
      --cors-credentials  allow credentials in CORS requests
      --functions <a b>   load only these functions
      --enableAuth        enforce function keys (keys from FUNCTIONS_SECRETS_PATH, or generated)
      --script-root <dir> the app folder (alias: --prefix)
      --no-watch          do not reload on file changes
      --verbose           print system logs
  -h, --help              this help
`

/** `thaw start`: the local runner behind a CLI with func start's flags and output. */
export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv)
  if (flags.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const scriptRoot = resolve(flags.scriptRoot ?? process.cwd())
  const config = await readAppConfig(scriptRoot)
  const port = flags.port ?? config.localSettings?.localHttpPort ?? 7071
  const keys = flags.enableAuth ? await authKeys(config.localSettings?.values) : undefined
  const print = (lines: string[]) => {
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
  }
  print([
    '',
    `thaw functions runner (Azure Functions host API ${FUNCTIONS_HOST_VERSION}), Node.js ${process.version}`,
    '',
  ])
  let runner: Runner | undefined
  let base = `http://localhost:${port}/`
  runner = createRunner({
    scriptRoot,
    port,
    watch: flags.watch,
    keys: keys?.set,
    cors: flags.cors,
    corsCredentials: flags.corsCredentials,
    functions: flags.functions,
    logger: (event) => {
      print(formatEvent(event, { verbose: flags.verbose }))
      const served = runner?.served()
      if (event.type === 'generation-ready' && served) {
        process.stdout.write(formatFunctionList(served, base, { verbose: flags.verbose }))
        if (!flags.verbose) print(['For detailed output, run thaw start with --verbose flag.'])
      }
    },
  })
  try {
    const url = await runner.ready
    base = `http://localhost:${url.port}/`
    if (keys) print(keys.notes)
  } catch (err) {
    await runner.dispose()
    throw err
  }
  await untilSignal()
  print(['', 'Stopping...'])
  await runner.dispose()
  return 0
}

interface Flags {
  help: boolean
  port: number | undefined
  cors: string[] | undefined
  corsCredentials: boolean
  functions: string[] | undefined
  enableAuth: boolean
  scriptRoot: string | undefined
  watch: boolean
  verbose: boolean
}

function parseFlags(argv: string[]): Flags {
  // func takes `--functions a b c`; parseArgs wants one value per flag.
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--functions') {
      args.push(argv[i]!)
      continue
    }
    while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-'))
      args.push('--functions', argv[++i]!)
  }
  let values
  try {
    ;({ values } = parseArgs({
      args,
      options: {
        help: { type: 'boolean', short: 'h' },
        port: { type: 'string', short: 'p' },
        cors: { type: 'string' },
        'cors-credentials': { type: 'boolean' },
        functions: { type: 'string', multiple: true },
        enableAuth: { type: 'boolean' },
        'enable-auth': { type: 'boolean' },
        'script-root': { type: 'string' },
        prefix: { type: 'string' },
        'no-watch': { type: 'boolean' },
        verbose: { type: 'boolean' },
      },
    }))
  } catch (err) {
    throw new LocalRunnerError('OPTIONS_INVALID', flagProblem('start', err))
  }
  const port = values.port === undefined ? undefined : Number(values.port)
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new LocalRunnerError(
      'OPTIONS_INVALID',
      `--port must be a port number, not "${values.port}"`,
    )
  }
  return {
    help: values.help ?? false,
    port,
    cors: values.cors
      ?.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    corsCredentials: values['cors-credentials'] ?? false,
    functions: values.functions,
    enableAuth: values.enableAuth ?? values['enable-auth'] ?? false,
    scriptRoot: values['script-root'] ?? values.prefix,
    watch: !values['no-watch'],
    verbose: values.verbose ?? false,
  }
}

/**
 * Keys for --enableAuth: Azure's files store at FUNCTIONS_SECRETS_PATH when set (environment or
 * local.settings.json), otherwise a master key and a default host key made for this run.
 */
async function authKeys(
  values: Record<string, string> | undefined,
): Promise<{ set: KeySet; notes: string[] }> {
  const dir = process.env.FUNCTIONS_SECRETS_PATH ?? values?.FUNCTIONS_SECRETS_PATH
  if (dir) return { set: await readSecretsDir(dir), notes: [`Keys are enforced (from ${dir}).`] }
  const set: KeySet = { master: generateKey(), host: { default: generateKey() } }
  return {
    set,
    notes: [
      'Keys are enforced (--enableAuth); generated for this run:',
      `  master key:       ${set.master}`,
      `  host key default: ${set.host!.default}`,
      'Send one in the x-functions-key header or the ?code= query.',
    ],
  }
}
