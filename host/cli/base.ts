import { parseArgs } from 'node:util'
import { flagProblem } from './command.ts'
import { ThawError } from '../../runtime/errors.ts'
import { DEFAULT_REGISTRY } from '../deploy/deploy-app.ts'
import { deployReporter } from '../deploy/deploy-output.ts'
import { buildAndPushBase } from '../deploy/push-base.ts'

const USAGE = `usage: thaw base node|debian [options]

Builds a base image on this machine, without internet or Docker, and pushes it:
  node     Node.js from this machine's own node (with its libraries), /bin/sh and env (small)
  debian   Debian bookworm minbase with nodejs and python3, slim (no docs, manuals, translations),
           with debootstrap (large; takes minutes)

options:
      --registry URL      where to push (default ${DEFAULT_REGISTRY})
      --repository R      the repository (default thaw/<kind>)
      --tag T             the tag (default latest)
      --out DIR           build folder (default /var/tmp/thaw-cache/base-<kind>; reused when unchanged)
      --mirror URL        debian: the apt mirror (default http://deb.debian.org/debian)
  -h, --help              this help
`

/** `thaw base node|debian`: build (cached) and push. Prints the reference by digest. */
export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        registry: { type: 'string' },
        repository: { type: 'string' },
        tag: { type: 'string' },
        out: { type: 'string' },
        mirror: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new ThawError('BASE_OPTIONS_INVALID', flagProblem('base', err), {
      fault: 'user',
    })
  }
  const { values: v, positionals } = parsed
  if (v.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const [kind, ...extra] = positionals
  if ((kind !== 'node' && kind !== 'debian') || extra.length > 0) {
    process.stderr.write(USAGE)
    return 2
  }
  const outDir = v.out ?? `/var/tmp/thaw-cache/base-${kind}`
  const result = await buildAndPushBase({
    kind,
    registry: v.registry ?? DEFAULT_REGISTRY,
    repository: v.repository,
    tag: v.tag,
    outDir,
    mirror: v.mirror,
    onEvent: deployReporter(process.stderr),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  })
  process.stderr.write(`Built ${result.base.description}\n`)
  process.stdout.write(`${result.reference}\n`)
  return 0
}
