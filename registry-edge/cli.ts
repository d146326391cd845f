import { parseArgs } from 'node:util'
import { ThawError } from '../runtime/errors.ts'
import { hashPassword } from './auth/password-hash.ts'
import { conversionOptionsOf } from './config/conversion-config.ts'
import { parseEdgeConfig, readConfigFile, type EdgeConfig } from './config/edge-config.ts'
import { uploadLimitsOf } from './config/upload-config.ts'
import { gcPolicyOf } from './config/gc-config.ts'
import { formatGcReport, requestGc } from './gc/gc-client.ts'
import { jsonLogger } from './observability/edge-logger.ts'
import type { UpstreamOptions } from './app.ts'
import { startRegistryEdge } from './server.ts'
import { checkStore } from './store/check-store.ts'

const USAGE = `usage: thaw edge [options]              run a registry edge (origin mode, or proxy mode with --upstream)
       thaw edge hash-password           print a password hash for the auth config (password on stdin)
       thaw edge check-store --store DIR verify a store's blobs and links
       thaw edge gc [--dry-run] [--edge URL] [--json]
                                         collect garbage on the running edge (default: the
                                         one --config or the defaults describe); --dry-run
                                         only reports what would be freed

options (each overrides the same field of the config file):
  --port N          port to listen on (default 5000)
  --host ADDR       address to listen on (default 127.0.0.1)
  --store DIR       store directory; in proxy mode the cache (default .thaw/edge)
  --region NAME     region name, on every log line and metric (default local)
  --upstream URL    proxy mode: serve the registry at URL through a cache
  --config FILE     JSON config file (see registry-edge/README.md)
  -h, --help        show this help
`

const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string' },
  region: { type: 'string' },
  upstream: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** `thaw edge ...`; resolves with the exit code once the edge has shut down. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'hash-password') return printPasswordHash()
  if (argv[0] === 'check-store') return runCheckStore(argv.slice(1))
  if (argv[0] === 'gc') return runGc(argv.slice(1))
  const { values } = parseFlags(argv)
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  return serve(await loadConfig(values))
}

async function serve(config: EdgeConfig): Promise<number> {
  const logger = jsonLogger({ region: config.region })
  const running = await startRegistryEdge({
    host: config.host,
    port: config.port,
    store: config.store,
    region: config.region,
    auth: config.auth,
    deletion: config.deletion,
    uploads: uploadLimitsOf(config.uploads, config.uploadTtlSeconds),
    upstream: config.upstream ? upstreamOptions(config.upstream, config.proxy) : undefined,
    conversion: conversionOptionsOf(config.conversion),
    gc: gcPolicyOf(config.gc),
    logger,
  })
  const mode = config.upstream ? { upstream: config.upstream } : {}
  logger.info('listening', {
    url: running.url,
    store: config.store,
    auth: config.auth ? 'on' : 'off',
    conversion: config.conversion.enabled ? 'on' : 'off',
    ...mode,
  })
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  // A second signal during shutdown means "now".
  const force = () => process.exit(1)
  process.once('SIGINT', force)
  process.once('SIGTERM', force)
  logger.info('shutting down', { signal })
  await running.close()
  logger.info('stopped')
  process.off('SIGINT', force)
  process.off('SIGTERM', force)
  return 0
}

function upstreamOptions(url: string, proxy: EdgeConfig['proxy']): UpstreamOptions {
  const { username, password } = proxy
  return {
    upstream: url,
    credentials: username !== undefined ? { username, password: password ?? '' } : undefined,
    tagTtlMs: proxy.tagTtlSeconds * 1000,
    memoryCacheBytes: proxy.memoryCacheMiB * 1024 * 1024,
    diskCacheBytes: proxy.diskCacheMiB * 1024 * 1024,
    fillConcurrency: proxy.fillConcurrency,
    publishUpstream: proxy.publishUpstream,
  }
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false })
  } catch (err) {
    // node's complaint is one sentence and advice on positionals: the sentence is the point.
    const problem = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '')
    throw new ThawError('USAGE', `${problem}; run "thaw edge --help" for its options`, { fault: 'user' })
  }
}

/** The config file's fields, overridden by the flags given, validated as one. */
async function loadConfig(values: ReturnType<typeof parseFlags>['values']): Promise<EdgeConfig> {
  const file = values.config ? await readConfigFile(values.config) : {}
  const flags: Record<string, unknown> = {}
  for (const key of ['host', 'store', 'region', 'upstream'] as const) {
    if (values[key] !== undefined) flags[key] = values[key]
  }
  if (values.port !== undefined) flags.port = /^\d+$/.test(values.port) ? Number(values.port) : values.port
  return parseEdgeConfig({ ...file, ...flags })
}

async function printPasswordHash(): Promise<number> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (!password) throw new ThawError('USAGE', 'give the password on stdin, e.g. `printf %s "$PW" | thaw edge hash-password`', { fault: 'user' })
  process.stdout.write(`${await hashPassword(password)}\n`)
  return 0
}

async function runCheckStore(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { store: { type: 'string' } }, strict: true })
  if (!values.store) throw new ThawError('USAGE', 'check-store needs --store DIR', { fault: 'user' })
  const problems = await checkStore(values.store)
  for (const p of problems) process.stdout.write(`${p}\n`)
  process.stdout.write(problems.length ? `${problems.length} problems\n` : 'store is consistent\n')
  return problems.length ? 1 : 0
}

async function runGc(argv: string[]): Promise<number> {
  const options = {
    'dry-run': { type: 'boolean' },
    edge: { type: 'string' },
    config: { type: 'string' },
    json: { type: 'boolean' },
  } as const
  let values
  try {
    ;({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }))
  } catch (err) {
    throw new ThawError('USAGE', `${(err as Error).message}\n\n${USAGE}`, { fault: 'user' })
  }
  let url = values.edge
  if (!url) {
    const config = parseEdgeConfig(values.config ? await readConfigFile(values.config) : {})
    const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '[::1]' : config.host
    url = `http://${host}:${config.port}`
  }
  const report = await requestGc(url, { dryRun: values['dry-run'] ?? false })
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatGcReport(report))
  return 0
}
