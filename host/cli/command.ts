import { describeError, isThawError } from '../../runtime/errors.ts'

/** One `thaw` subcommand, loaded only when it runs so `thaw --help` stays fast. */
export interface Command {
  summary: string
  load: () => Promise<{ main: (argv: string[]) => Promise<number | void> }>
}

/** Dispatches `thaw <command> ...`; returns the process exit code. */
export async function runCli(commands: Record<string, Command>, argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(commands))
    return name ? 0 : 2
  }
  const command = commands[name]
  if (!command) {
    process.stderr.write(`thaw: unknown command "${name}"\n\n${usage(commands)}`)
    return 2
  }
  try {
    const { main } = await command.load()
    return (await main(rest)) ?? 0
  } catch (err) {
    // User faults (bad flags, bad config) get one clear line; system faults keep their stack.
    if (isThawError(err) && err.fault === 'user') {
      process.stderr.write(`thaw ${name}: ${err.message}\n`)
      return 2
    }
    process.stderr.write(`thaw ${name}: ${describeError(err)}\n`)
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
    return 1
  }
}

function usage(commands: Record<string, Command>): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length))
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`)
  return `usage: thaw <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "thaw <command> --help" for a command's options.\n`
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
