import type { App } from '../apps/app-spec.ts'
import type { RevisionView } from '../server/admin-revisions.ts'
import type { RolloutAnswer } from '../deploy/host-admin.ts'
import { functionUrl } from '../deploy/host-admin.ts'
import {
  appPath,
  runAdminCommand,
  table,
  usageError,
  type AdminSubcommand,
} from './admin-command.ts'

interface Revisions {
  name: string
  active: number
  revisions: RevisionView[]
}
type AppAnswer = App & { nodes: { nodes: { state: string }[] } | null }

/** `thaw apps list|show|delete|rollback`: the host's apps and their revisions. */
const subcommands: Record<string, AdminSubcommand> = {
  list: {
    args: '',
    min: 0,
    max: 0,
    async run(admin, _args, out) {
      const { apps } = await admin.call<{ apps: App[] }>('GET', '/admin/apps')
      const pool = await admin.call<{ apps: Record<string, { nodes: unknown[] }> }>(
        'GET',
        '/admin/pool',
      )
      if (apps.length === 0) out('no apps on this host (thaw deploy --host … makes one)\n')
      else {
        const rows = apps.map((a) => [
          a.name,
          String(a.revision),
          String(pool.apps[a.name]?.nodes.length ?? 0),
          a.updatedAt,
          a.image,
        ])
        out(table([['NAME', 'REVISION', 'NODES', 'UPDATED', 'IMAGE'], ...rows]))
      }
      return { apps }
    },
  },
  show: {
    args: 'APP',
    min: 1,
    max: 1,
    async run(admin, [name], out) {
      const app = await admin.call<AppAnswer>('GET', appPath(name!))
      const history = await admin.call<Revisions>('GET', appPath(name!, 'revisions'))
      const active = history.revisions.find((r) => r.active)
      const nodes = app.nodes?.nodes ?? []
      const lines = [
        `${app.name}: revision ${app.revision}, created ${app.createdAt}, updated ${app.updatedAt}`,
        `  image     ${app.image}`,
        `  settings  ${Object.keys(app.settings).join(', ') || '(none)'}`,
        `  keys      ${Object.keys(app.keys).join(', ') || '(none)'}`,
        `  limits    ${formatLimits(app.limits)}`,
        `  nodes     ${nodes.length ? nodes.map((n) => n.state).join(', ') : 'none (scaled to zero)'}`,
        '  functions',
        ...(active?.functions ?? []).map(
          (f) =>
            `    ${f.name}: [${(f.methods ?? ['any']).join(',')}] ${functionUrl(admin.url, app.name, f)}`,
        ),
        ...(active?.functions
          ? []
          : ['    (not known until a node of this revision has loaded them)']),
        '  revisions (newest first)',
        table(
          history.revisions.map((r) => [
            r.active ? '  *' : '   ',
            String(r.number),
            r.createdAt,
            causeOf(r),
            r.failed ? `failed: ${r.failed.error.split('\n')[0]}` : r.image,
          ]),
        ).trimEnd(),
      ]
      out(`${lines.join('\n')}\n`)
      return { ...app, revisions: history.revisions }
    },
  },
  delete: {
    args: 'APP',
    min: 1,
    max: 1,
    async run(admin, [name], out) {
      await admin.call('DELETE', appPath(name!))
      out(`Deleted ${name}: its nodes drain (requests in flight finish)\n`)
      return { deleted: name }
    },
  },
  rollback: {
    args: 'APP [REVISION]   (default: the revision before the active one)',
    min: 1,
    max: 2,
    async run(admin, [name, to], out) {
      const revision = to === undefined ? undefined : Number(to)
      if (revision !== undefined && !(Number.isInteger(revision) && revision > 0)) {
        throw usageError(`REVISION must be a revision number, not "${to}"`)
      }
      const answer = await admin.call<RolloutAnswer>(
        'POST',
        appPath(name!, 'rollback'),
        revision === undefined ? {} : { revision },
      )
      out(`${rolledOut(answer)}\n`)
      return answer
    },
  },
}

export function main(argv: string[]): Promise<number> {
  return runAdminCommand('apps', subcommands, argv)
}

/** One line for a change that made a revision (rollback, settings, keys). */
export function rolledOut(a: RolloutAnswer): string {
  const why =
    a.revision.cause.kind === 'rollback'
      ? ` (the image, settings and limits of revision ${a.revision.cause.to})`
      : ''
  const how = a.restarted
    ? 'started and loaded its functions; the previous nodes drain'
    : 'the running nodes carry on'
  return `Revision ${a.revision.number} of ${a.app} is live${why}: ${how}`
}

function causeOf(r: RevisionView): string {
  return r.cause.kind === 'rollback' ? `rollback to ${r.cause.to}` : r.cause.kind
}

function formatLimits(l: App['limits']): string {
  const mib = Math.round(l.memoryBytes / 1024 / 1024)
  return `${mib} MiB, ${l.cpuMillis / 1000} CPU, ${l.maxNodes} nodes × ${l.concurrency}, queue ${l.maxQueue}, idle ${l.idleTimeoutMs / 1000} s`
}
