import { readFileSync } from 'node:fs'
import { describeError, isThawError, ThawError } from '../../runtime/errors.ts'
import { closest } from './closest.ts'
import { describeUnreachable } from './unreachable.ts'

/** One `thaw` subcommand, loaded only when it runs so `thaw --help` stays fast. */
export interface Command {
  summary: string
  load: () => Promise<{ main: (argv: string[]) => Promise<number | void> }>
}

/** thaw's version, from its package.json. */
export function thawVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  return String((pkg as { version?: unknown }).version)
}

/**
 * Dispatches `thaw <command> ...`; returns the process exit code. Every failure a user can cause
 * or fix (a mistyped command or flag, bad input, a registry or host that cannot be reached) is
 * one line on stderr and exit 2 (with the lines its message carries, such as a refused
 * revision's node log); a fault of thaw itself is one line and exit 1, with its stack only
 * under THAW_DEBUG=1.
 */
export async function runCli(commands: Record<string, Command>, argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(commands))
    return name ? 0 : 2
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`thaw ${thawVersion()} (Node.js ${process.version})\n`)
    return 0
  }
  const command = commands[name]
  if (!command) {
    const guess = closest(name, Object.keys(commands))
    const hint = guess ? `; did you mean "thaw ${guess}"?` : ''
    process.stderr.write(`thaw: unknown command "${name}"${hint} (the commands: thaw --help)\n`)
    return 2
  }
  try {
    const { main } = await command.load()
    return (await main(rest)) ?? 0
  } catch (err) {
    return failed(name, err)
  }
}

function failed(name: string, err: unknown): number {
  if (isThawError(err) && err.fault === 'user') {
    // Whole: a user error's lines are chosen by its author (a refused revision's node log, say).
    process.stderr.write(`thaw ${name}: ${err.message}\n`)
    return 2
  }
  if (isParseArgsError(err)) {
    process.stderr.write(`thaw ${name}: ${flagProblem(name, err)}\n`)
    return 2
  }
  const unreachable = describeUnreachable(err)
  if (unreachable) {
    process.stderr.write(`thaw ${name}: ${unreachable}\n`)
    return 2
  }
  process.stderr.write(`thaw ${name}: ${oneLine(describeError(err))}\n`)
  if (process.env.THAW_DEBUG === '1' && err instanceof Error && err.stack) {
    process.stderr.write(`${err.stack}\n`)
  } else process.stderr.write(`(THAW_DEBUG=1 prints the stack)\n`)
  return 1
}

/**
 * node:util parseArgs's complaint (an unknown or mistyped flag, a flag without its value) as one
 * line that says where the options are listed.
 */
export function flagProblem(command: string, err: unknown): string {
  // Node's text goes on about positionals after "--": its first sentence is the point.
  const first = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '')
  return `${first}; run "thaw ${command} --help" for its options`
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')
}

/** A message as one line (the first, when it has several). */
function oneLine(message: string): string {
  return message.split('\n').find((l) => l.trim() !== '') ?? message
}

function usage(commands: Record<string, Command>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length))
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`)
  return `usage: thaw <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "thaw <command> --help" for a command's options, "thaw --version" for the version.\n`
}

/** Resolves at the first SIGINT or SIGTERM, then stops listening for both. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done)
      process.off('SIGTERM', done)
      resolve()
    }
    process.on('SIGINT', done)
    process.on('SIGTERM', done)
  })
}

/**
 * Registry credentials of the CLI's commands (deploy, host, mount): THAW_REGISTRY_USERNAME and
 * THAW_REGISTRY_PASSWORD, for registries and edges with auth on; anonymous without.
 */
export function registryCredentials(): { username: string; password: string } | undefined {
  const username = process.env.THAW_REGISTRY_USERNAME
  const password = process.env.THAW_REGISTRY_PASSWORD
  return username && password !== undefined ? { username, password } : undefined
}

/**
 * The edge that takes profiles for an image's registry host (`thaw host`, `thaw snapshotter`):
 * the one at that host, else the first, else the registry.
 */
export function edgeFor(edges: string[], registry: string): string {
  return edges.find((e) => new URL(e).host === registry) ?? edges[0] ?? `http://${registry}`
}

/** A flag's or variable's value that must be a whole number from `min` to `max`; else a user error. */
export function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new ThawError(
      'OPTIONS_INVALID',
      `${flag} must be a whole number from ${min} to ${max}, not "${text}"`,
      { fault: 'user' },
    )
  return n
}
