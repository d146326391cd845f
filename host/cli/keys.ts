import { appPath, runAdminCommand, type AdminSubcommand } from './admin-command.ts'

interface KeyAnswer {
  name: string
  value: string
  revision: number
}

/**
 * `thaw keys list|set|renew|delete`: an app's host keys (they open `authLevel: 'function'`
 * routes). A change is a new revision that keeps the running nodes (keys are checked at the door).
 */
const subcommands: Record<string, AdminSubcommand> = {
  list: {
    args: 'APP',
    min: 1,
    max: 1,
    async run(admin, [name], out) {
      const answer = await admin.call<{ keys: Record<string, string> }>(
        'GET',
        appPath(name!, 'keys'),
      )
      for (const [k, v] of Object.entries(answer.keys)) out(`${k}  ${v}\n`)
      return answer
    },
  },
  set: {
    args: 'APP KEYNAME VALUE   (at least 16 characters)',
    min: 3,
    max: 3,
    async run(admin, [name, key, value], out) {
      const answer = await admin.call<KeyAnswer>('PUT', appPath(name!, 'keys', key!), { value })
      out(`Key ${key} of ${name} set (revision ${answer.revision})\n`)
      return answer
    },
  },
  renew: {
    args: 'APP KEYNAME   (a new random value; the old one stops working)',
    min: 2,
    max: 2,
    async run(admin, [name, key], out) {
      const answer = await admin.call<KeyAnswer>('PUT', appPath(name!, 'keys', key!), {})
      out(`${answer.value}\n`)
      return answer
    },
  },
  delete: {
    args: 'APP KEYNAME',
    min: 2,
    max: 2,
    async run(admin, [name, key], out) {
      await admin.call('DELETE', appPath(name!, 'keys', key!))
      out(`Key ${key} of ${name} deleted\n`)
      return { deleted: key }
    },
  },
}

export function main(argv: string[]): Promise<number> {
  return runAdminCommand('keys', subcommands, argv)
}
