import type { RolloutAnswer } from '../deploy/host-admin.ts'
import { rolledOut } from './apps.ts'
import { appPath, runAdminCommand, usageError, type AdminSubcommand } from './admin-command.ts'

/** `thaw settings list|set|unset`: an app's settings; a change is a new revision, health-gated. */
const subcommands: Record<string, AdminSubcommand> = {
  list: {
    args: 'APP',
    min: 1,
    max: 1,
    async run(admin, [name], out) {
      const answer = await admin.call<{ settings: Record<string, string> }>(
        'GET',
        appPath(name!, 'settings'),
      )
      for (const [k, v] of Object.entries(answer.settings)) out(`${k}=${v}\n`)
      return answer
    },
  },
  set: {
    args: 'APP NAME=VALUE...',
    min: 2,
    max: Infinity,
    async run(admin, [name, ...pairs], out) {
      const set: Record<string, string> = {}
      for (const pair of pairs) {
        const eq = pair.indexOf('=')
        if (eq <= 0) throw usageError(`"${pair}": expected NAME=VALUE`)
        set[pair.slice(0, eq)] = pair.slice(eq + 1)
      }
      const answer = await admin.call<RolloutAnswer>('PATCH', appPath(name!, 'settings'), { set })
      out(`${rolledOut(answer)}\n`)
      return answer
    },
  },
  unset: {
    args: 'APP NAME...',
    min: 2,
    max: Infinity,
    async run(admin, [name, ...names], out) {
      const answer = await admin.call<RolloutAnswer>('PATCH', appPath(name!, 'settings'), {
        unset: names,
      })
      out(`${rolledOut(answer)}\n`)
      return answer
    },
  },
}

export function main(argv: string[]): Promise<number> {
  return runAdminCommand('settings', subcommands, argv)
}
