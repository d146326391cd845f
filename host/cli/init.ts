import { parseArgs } from 'node:util'
import { relative } from 'node:path'
import { initProject, listTemplates, InitError, type InstallMode } from '../init/init-project.ts'

const USAGE = (templates: string[]) => `usage: thaw init <dir> --template <name> [options]

Creates a function app from a template.

templates: ${templates.join(', ')}

options:
  -t, --template <name>   the template (default: http-typescript)
      --name <name>       the package name (default: the folder name)
      --install <mode>    link (default): link dependencies from thaw's own node_modules, offline;
                          npm: run npm install; none: do nothing
      --force             write into a folder that is not empty
  -h, --help              this help
`

/** `thaw init <dir> --template <name>`. */
export async function main(argv: string[]): Promise<number> {
  const templates = await listTemplates()
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        template: { type: 'string', short: 't' },
        name: { type: 'string' },
        install: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new InitError('TEMPLATE_UNKNOWN', `${(err as Error).message}\n\n${USAGE(templates)}`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(USAGE(templates))
    return 0
  }
  const [dir, ...extra] = positionals
  if (!dir || extra.length > 0) {
    process.stderr.write(USAGE(templates))
    return 2
  }
  const install = (values.install ?? 'link') as InstallMode
  if (!['link', 'npm', 'none'].includes(install)) {
    process.stderr.write(`thaw init: --install must be link, npm or none\n`)
    return 2
  }
  const template = values.template ?? 'http-typescript'
  const result = await initProject({
    dir,
    template,
    name: values.name,
    install,
    force: values.force,
  })
  const where = relative(process.cwd(), result.dir) || '.'
  const start = template.startsWith('custom-handler') ? 'thaw start' : 'npm start'
  const test = template.startsWith('custom-handler') ? 'python3 -m unittest -v' : 'npm test'
  process.stdout.write(
    `Created ${where} from the ${template} template:\n${result.files.map((f) => `  ${f}`).join('\n')}\n\n` +
      `Next:\n  cd ${where}\n  ${test}\n  ${start}\n`,
  )
  return 0
}
