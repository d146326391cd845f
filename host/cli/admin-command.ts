import { existsSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ThawError } from '../../runtime/errors.ts'
import { callHostAdmin } from '../deploy/host-admin.ts'

/** Where `thaw host` listens by default, and where `thaw host --state .thaw/host` keeps its key. */
const DEFAULT_HOST = 'http://127.0.0.1:7071'
const DEFAULT_KEY_FILE = '.thaw/host/master.key'

export const ADMIN_FLAGS_HELP = `host options:
      --host URL          the host (default THAW_HOST, else ${DEFAULT_HOST})
      --master-key K      its master key (default THAW_MASTER_KEY, else ./${DEFAULT_KEY_FILE})
      --json              print the admin API's answer as it is
  -h, --help              this help
`

/** One subcommand of `thaw apps|settings|keys`: its positional arguments, and what it does. */
export interface AdminSubcommand {
  /** `APP [REVISION]`: shown in the usage; `min` of them are required. */
  args: string
  min: number
  max: number
  run(admin: HostAdmin, args: string[], out: (text: string) => void): Promise<unknown>
}

export interface HostAdmin {
  readonly url: string
  call<T>(method: string, path: string, body?: unknown): Promise<T>
}

export function usageError(message: string): ThawError {
  return new ThawError('CLI_USAGE', message, { fault: 'user' })
}

/**
 * Runs `thaw <command> <sub> ARGS... [--host URL] [--master-key K] [--json]`: each subcommand
 * one admin API call or two (host/README.md "Admin API"), errors as one line (runCli).
 */
export async function runAdminCommand(
  command: string,
  subcommands: Record<string, AdminSubcommand>,
  argv: string[],
): Promise<number> {
  const usage = `usage:\n${Object.entries(subcommands)
    .map(([name, s]) => `  thaw ${command} ${name} ${s.args}`)
    .join('\n')}\n\n${ADMIN_FLAGS_HELP}`
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string' },
        'master-key': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw usageError(`${(err as Error).message} (thaw ${command} --help)`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(usage)
    return 0
  }
  const [name, ...args] = positionals
  const sub = name === undefined ? undefined : subcommands[name]
  if (!sub) {
    const known = Object.keys(subcommands).join(', ')
    throw usageError(
      name === undefined
        ? `which one: ${known}? (thaw ${command} --help)`
        : `unknown subcommand "${name}": ${known} (thaw ${command} --help)`,
    )
  }
  if (args.length < sub.min || args.length > sub.max) {
    throw usageError(`usage: thaw ${command} ${name} ${sub.args}`)
  }
  const admin = hostAdmin(values.host, values['master-key'])
  const out = (text: string) => void process.stdout.write(text)
  const answer = await sub.run(admin, args, values.json ? () => {} : out)
  if (values.json) out(`${JSON.stringify(answer, null, 2)}\n`)
  return 0
}

function hostAdmin(host: string | undefined, key: string | undefined): HostAdmin {
  const url = host ?? process.env.THAW_HOST ?? DEFAULT_HOST
  const masterKey = key ?? process.env.THAW_MASTER_KEY ?? keyFile()
  if (!masterKey) {
    throw usageError(
      `the host's master key is needed: --master-key K or THAW_MASTER_KEY (thaw host keeps it in <state>/master.key)`,
    )
  }
  return {
    url,
    call: async <T>(method: string, path: string, body?: unknown) =>
      (await callHostAdmin<T>(url, masterKey, method, path, body)).body,
  }
}

function keyFile(): string | undefined {
  return existsSync(DEFAULT_KEY_FILE) ? readFileSync(DEFAULT_KEY_FILE, 'utf8').trim() : undefined
}

/** `a  b  c` columns, each as wide as its widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return (
    rows
      .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
      .join('\n') + '\n'
  )
}

/** `/admin/apps/<name>` and below, with the name escaped. */
export function appPath(name: string, ...rest: string[]): string {
  return ['/admin/apps', ...[name, ...rest].map(encodeURIComponent)].join('/')
}
